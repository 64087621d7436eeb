"""The CI templates (examples/ci/) run as written, so they cannot rot: their ``run:`` and
``script:`` lines are read from the YAML and run by bash, in order, on a fake-backend project, as
a runner would on main and then on a pull request, with the baseline artifact carried between.

Only what a runner provides is stood in for: its variables (``GITHUB_REF_NAME``,
``CI_COMMIT_BRANCH``...), the artifact store behind ``gh run download`` and GitLab's artifact URL
(``curl``), the restored cache, and ``pip install`` (no network here: the stub records the
requested packages and the test checks the extras exist). ``pytest`` is the real one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_project import write_project

yaml = pytest.importorskip("yaml", reason="PyYAML reads the templates (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "examples" / "ci" / "github-actions.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci.yml"
BASH = shutil.which("bash")

# drifty passes loose thresholds; a pull request that drifts further regresses against main.
LOOSE = ('backends = ["drifty"]\n[tool.quantgate.thresholds."drifty"]\nmax_abs_logit = 50.0\n'
         "max_abs_share = 1.0\nmean_abs_logit = 50.0\nkl_div = 50.0\ntop1_agreement = 0.0\n"
         "topk_overlap = 0.0\naccuracy_delta = 1.0\nf1_delta = 1.0\n")

# The artifact store: `gh run list/download` (GitHub) and the artifacts API through `curl`
# (GitLab) read what the test's "upload" put under $ARTIFACTS/<name>/.
GH = r'''
import os, shutil, sys
from pathlib import Path
store, args = Path(os.environ["ARTIFACTS"]), sys.argv[1:]
if args[:2] == ["run", "list"]:
    print("4242" if any(store.iterdir()) else "")
elif args[:2] == ["run", "download"]:
    name, out = args[args.index("--name") + 1], Path(args[args.index("--dir") + 1])
    if not (store / name).is_dir():
        sys.exit(f"no artifact {name}")
    shutil.copytree(store / name, out, dirs_exist_ok=True)
else:
    sys.exit(f"gh stub: unexpected {args}")
'''
CURL = r'''
import os, re, shutil, sys
from pathlib import Path
args = sys.argv[1:]
out = Path(args[args.index("--output") + 1])
url = next(a for a in args if a.startswith("http"))
api = r"https://gitlab\.example/api/v4/projects/7/jobs/artifacts/main/raw/"
m = re.fullmatch(api + r"(.+)\?job=quantgate", url)
if not m or not (Path(os.environ["ARTIFACTS"]) / "job" / m.group(1)).is_file():
    sys.exit(22)  # curl --fail on a 404
shutil.copy(Path(os.environ["ARTIFACTS"]) / "job" / m.group(1), out)
'''
PIP = r'''
import os, sys
with open(os.environ["PIP_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
'''


class Runner:
    """One repository on a CI runner: a checkout, the restored cache, the artifact store."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.artifacts = tmp / "artifacts"
        self.cache = tmp / "cache"  # what actions/cache or GitLab's cache restores
        self.artifacts.mkdir()
        bin_ = tmp / "bin"
        bin_.mkdir()
        for name, body in (("gh", GH), ("curl", CURL), ("pip", PIP)):
            (bin_ / name).write_text(f"#!{sys.executable}\n{body}")
            (bin_ / name).chmod(0o755)
        self.path = f"{bin_}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"
        self.runs = 0

    def checkout(self, drift: float) -> Path:
        self.runs += 1
        repo = self.tmp / f"checkout-{self.runs}"
        repo.mkdir()
        toml = (f'\n[[tool.quantgate.backend]]\nname = "ref"\nkind = "fake"\n\n'
                f'[[tool.quantgate.backend]]\nname = "drifty"\nkind = "fake"\ndrift = {drift}\n')
        write_project(repo, LOOSE, backends_toml=toml)
        if self.cache.is_dir():
            shutil.copytree(self.cache, repo / ".quantgate-cache")
        return repo

    def env(self, variables: dict[str, Any]) -> dict[str, str]:
        """A runner's bare environment: no PYTEST_* or xdist variables of this test run."""
        env = {"PATH": self.path, "HOME": os.environ.get("HOME", str(self.tmp)),
               "LANG": "C.UTF-8", "CI": "true", "ARTIFACTS": str(self.artifacts),
               "PIP_LOG": str(self.tmp / "pip.log")}
        env.update({k: str(v) for k, v in variables.items()})
        return env

    def bash(self, script: str, repo: Path, env: dict[str, str],
             flags: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        assert BASH is not None
        return subprocess.run([BASH, *flags, "-c", script], cwd=repo, env=env, text=True,
                              capture_output=True, timeout=300, check=False)


def runner_value(value: Any) -> str:
    """A step's ``${{ ... }}`` expression stands for what the runner provides: a placeholder."""
    return re.sub(r"\$\{\{[^}]*\}\}", "provided-by-the-runner", str(value))


# -- GitHub Actions -------------------------------------------------------------------------------
def github_run(runner: Runner, repo: Path, *, main: bool) -> tuple[int, str]:
    """Every step of the workflow in order: run: blocks through bash -e (the runner's default
    shell), uses: steps as the runner would do them (checkout and setup-python are the test's
    own; the cache's path and the uploads' paths are read from the step)."""
    flow = yaml.safe_load(GITHUB.read_text(encoding="utf-8"))
    job = next(iter(flow["jobs"].values()))
    variables = {**flow.get("env", {}), **job.get("env", {}),
                 "GITHUB_REF_NAME": "main" if main else "17/merge",
                 "GITHUB_REF": "refs/heads/main" if main else "refs/pull/17/merge",
                 "GITHUB_EVENT_NAME": "push" if main else "pull_request"}
    failed, out = False, ""
    for step in job["steps"]:
        condition = step.get("if", "success()")
        if not {"success()": not failed, "always()": True,
                "github.ref == 'refs/heads/main'": main and not failed}[condition]:
            continue
        if "run" in step:
            env = runner.env({**variables, **{k: runner_value(v)
                                              for k, v in step.get("env", {}).items()}})
            done = runner.bash(step["run"], repo, env, ("-e",))
            out += done.stdout + done.stderr
            failed = failed or done.returncode != 0
        elif step["uses"].startswith("actions/cache@"):
            # restored by checkout(), saved at the job's end (below)
            assert step["with"]["path"] == ".quantgate-cache"
        elif step["uses"].startswith("actions/upload-artifact@"):
            path = repo / step["with"]["path"]
            assert path.exists(), f"step {step['name']!r} uploads {path}, which is missing"
            dest = runner.artifacts / step["with"]["name"]
            dest.mkdir(exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, dest, dirs_exist_ok=True)
            else:
                shutil.copy(path, dest / path.name)
    if (repo / ".quantgate-cache").is_dir():  # actions/cache saves at the job's end
        shutil.rmtree(runner.cache, ignore_errors=True)
        shutil.copytree(repo / ".quantgate-cache", runner.cache)
    return (1 if failed else 0), out


# -- GitLab CI ------------------------------------------------------------------------------------
def gitlab_run(runner: Runner, repo: Path, *, main: bool) -> tuple[int, str]:
    """before_script and script as one bash session with -e and pipefail, as GitLab's runner
    runs them; then the artifacts (when: always) and the cache."""
    config = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    (name, job), = config.items()
    variables = {**job.get("variables", {}), "CI_JOB_NAME": name, "CI_DEFAULT_BRANCH": "main",
                 "CI_PROJECT_DIR": str(repo), "CI_PROJECT_ID": "7",
                 "CI_API_V4_URL": "https://gitlab.example/api/v4", "CI_JOB_TOKEN": "token",
                 "CI_PIPELINE_SOURCE": "push" if main else "merge_request_event"}
    if main:
        variables["CI_COMMIT_BRANCH"] = "main"  # (unset in merge request pipelines)
    script = "\n".join([*job.get("before_script", []), *job["script"]])
    done = runner.bash(script, repo, runner.env(variables), ("-e", "-o", "pipefail"))
    assert job["artifacts"]["when"] == "always"
    if main and done.returncode == 0:  # the artifacts API serves the last green pipeline's
        for path in job["artifacts"]["paths"]:
            shutil.copytree(repo / path, runner.artifacts / "job" / path, dirs_exist_ok=True)
    assert (repo / job["artifacts"]["reports"]["junit"]).is_file()
    assert ".quantgate-cache/" in job["cache"]["paths"]
    shutil.rmtree(runner.cache, ignore_errors=True)
    shutil.copytree(repo / ".quantgate-cache", runner.cache)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
@pytest.mark.parametrize("run", [github_run, gitlab_run], ids=["github-actions", "gitlab-ci"])
def test_the_template_gates_main_then_a_pull_request_against_its_baseline(run, tmp_path):
    runner = Runner(tmp_path)
    # main, first ever run: no baseline yet; the run records one
    code, out = run(runner, runner.checkout(0.5), main=True)
    assert code == 0, out[-3000:]
    assert "quantgate baseline: none yet at" in out and "this run records it" in out
    first = runner.tmp / "checkout-1"
    for report in ("quantgate.json", "quantgate.html", "junit.xml"):
        assert (first / "reports" / report).is_file(), report
    assert json.loads((first / "baseline" / "quantgate.json").read_text())["backends"]["drifty"]
    # a pull request that changes nothing: compared with main's baseline, passes
    code, out = run(runner, runner.checkout(0.5), main=False)
    assert code == 0, out[-3000:]
    assert "0 regressions in" in out, out[-3000:]
    assert "reference ref on 45 inputs of golden.jsonl (outputs loaded from the cache" in out
    # a pull request whose backend drifts further: within the thresholds, but a regression
    code, out = run(runner, runner.checkout(2.0), main=False)
    assert code == 1, out[-3000:]
    assert "regressed against the baseline" in out, out[-3000:]
    assert (runner.tmp / "checkout-3" / "reports" / "junit.xml").is_file()


def test_the_install_lines_ask_for_the_cpu_torch_and_extras_that_exist():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                 ["optional-dependencies"])
    github = yaml.safe_load(GITHUB.read_text(encoding="utf-8"))
    gitlab = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))["quantgate"]
    for spec, lines in ((github["env"]["QUANTGATE"], next(
            s["run"] for s in next(iter(github["jobs"].values()))["steps"]
            if "pip install" in s.get("run", ""))),
            (gitlab["variables"]["QUANTGATE"], "\n".join(gitlab["before_script"]))):
        wanted = re.fullmatch(r"pytest-quantgate\[([\w,]+)\] @ git\+https://\S+", spec)
        assert wanted, spec
        assert set(wanted.group(1).split(",")) <= extras
        assert ("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
                in lines)
        assert lines.index("torch==2.13.0") < lines.index('"$QUANTGATE"')  # CPU torch first


def test_docs_quote_the_templates_as_they_are():
    doc = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    for template in (GITHUB, GITLAB):
        assert template.read_text(encoding="utf-8").strip() in doc, template.name
