"""Every configuration problem stops the run at start-up with a one-line UsageError."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('backends = ["same"]\nbatchsize = 4',
         "*key: got 'batchsize', expected one of [[]*'batch_size'*fix the spelling or remove it"),
        ('backends = ["nope"]',
         "*backend: got 'nope', expected one of [[]*'same'*declare it in a [[][[]tool.quantgate."
         "backend[]][]] table*"),
        ('backends = ["same"]\nmax_length = "long"',
         "*max_length: got 'long', expected a whole number >= 1; e.g. max_length = 128"),
        ('backends = ["same"]\nmax_length = 0',
         "*max_length: got 0, expected a whole number >= 1*"),
        ('backends = ["same"]\n[tool.quantgate.thresholds."same"]\ntop1_agreement = 1.5',
         "*threshold top1_agreement: got 1.5, expected a value in [[]0.0, 1.0[]]*"),
        ('backends = ["same"]\n[tool.quantgate.thresholds."same"]\nmax_abs_logit = "small"',
         "*threshold max_abs_logit: got 'small', expected a number*"),
        ('backends = ["same"]\ncalibration = "data/missing.jsonl"',
         "*calibration: file: got '*missing.jsonl', expected an existing JSONL file; fix the path*"),
        ('backends = ["same"]\ntask = "causal-lm"',
         "*kind of backend 'ref' for task 'causal-lm': got 'fake', expected a kind that runs "
         "the task*"),
    ],
    ids=["unknown-key", "unknown-backend", "type", "range", "threshold-range", "threshold-type",
         "missing-data", "task-kind"],
)
def test_bad_config_is_a_usage_error(project, table, message):
    result = project(table).runpytest("--quantgate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: quantgate: " + message.lstrip("*")
                                 if not message.startswith("*") else "ERROR: quantgate: " + message])


def test_missing_model_directory(project):
    pytester = project('backends = ["same"]')
    result = pytester.runpytest("--quantgate", "--quantgate-model", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: quantgate: option --quantgate-model: model directory: got "
                                 "'*nowhere', expected an existing Hugging Face model directory*"])


def test_cli_value_rejected_at_parse_time(project):
    result = project().runpytest("--quantgate", "--quantgate-batch-size", "many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--quantgate-batch-size: option --quantgate-batch-size: got "
                                 "'many', expected a whole number*"])


def test_unknown_backend_option(project):
    extra = '\n[[tool.quantgate.backend]]\nname = "x"\nkind = "fake"\ndrfit = 1.0\n'
    from fake_project import BACKENDS_TOML

    result = project('backends = ["x"]', backends_toml=BACKENDS_TOML + extra).runpytest(
        "--quantgate")
    result.stderr.fnmatch_lines(["*option of backend 'x' (fake): got 'drfit', expected one of "
                                 "[[]*'drift'*remove or rename it"])


def test_gate_without_configuration(pytester):
    result = pytester.runpytest("--quantgate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*model: got None, expected a path; add model = *"])


def test_unknown_marker_keyword_fails_at_collection(project):
    pytester = project()
    pytester.makepyfile("""
        import pytest

        @pytest.mark.quantgate(max_abs_logits=0.1)
        def test_x(quantgate):
            pass
    """)
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*threshold keyword: got 'max_abs_logits', expected one of "
                                 "[[]*'max_abs_logit'*fix the spelling*"])
    result.stdout.fnmatch_lines(["*error*"])


def test_nearest_quantgate_table_wins_over_the_rootdir_ini(project):
    """A model repo inside a bigger repo: pytest's rootdir config has no [tool.quantgate]."""
    pytester = project('backends = ["same"]')
    outer = pytester.path / "outer"
    outer.mkdir()
    inner = outer / "model-repo"
    inner.mkdir()
    (outer / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = ''\n")
    table = (pytester.path / "pyproject.toml").read_text()
    (inner / "pyproject.toml").write_text(table.replace('"model"', f'"{pytester.path / "model"}"')
                                          .replace('"data/golden.jsonl"',
                                                   f'"{pytester.path / "data/golden.jsonl"}"'))
    (pytester.path / "pyproject.toml").unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(inner)
        result = pytester.runpytest("--quantgate", f"--rootdir={outer}", "-c",
                                    str(outer / "pyproject.toml"), "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*quantgate::same::logits PASSED*"])
