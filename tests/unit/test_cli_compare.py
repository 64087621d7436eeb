"""``quantgate compare`` judges with the project's [tool.quantgate] tolerances, as CI's run does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_quantgate.cli import main


def _report(top1: float) -> dict[str, object]:
    return {"format": "pytest-quantgate-report", "version": 1,
            "manifest": {"machine": {"cpu": "X", "cpu_flags": ["avx2"]}, "git": {"commit": "abc"}},
            "backends": {"b": {"verdict": "PASS", "checks": [
                {"check": "topk", "measures": [{"name": "top1_agreement", "value": top1,
                                                "op": ">="}]}]}}}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout (its top marked by .git, where the search for pyproject.toml stops), cwd in it."""
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _runs(repo: Path, base: float, now: float) -> list[str]:
    (repo / "a.json").write_text(json.dumps(_report(base)))
    (repo / "b.json").write_text(json.dumps(_report(now)))
    return ["compare", str(repo / "a.json"), str(repo / "b.json")]


def _pyproject(folder: Path, tolerances: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(f'[project]\nname = "m"\n\n[tool.quantgate]\nmodel = "models/absent"\n\n'
                    f"[tool.quantgate.tolerances]\n{tolerances}\n")
    return path


def test_without_a_pyproject_the_defaults_judge(repo: Path, capsys: pytest.CaptureFixture[str]):
    assert main(_runs(repo, 0.98, 0.977)) == 0  # 0.003 worse: within the default 0.005
    assert main(_runs(repo, 0.98, 0.97)) == 1
    out = capsys.readouterr().out
    assert f"tolerances: defaults (no pyproject.toml with [tool.quantgate] from {repo} up)" in out


def test_a_looser_project_tolerance_passes_what_the_defaults_fail(
        repo: Path, capsys: pytest.CaptureFixture[str]):
    path = _pyproject(repo, "top1_agreement = 0.1")
    assert main(_runs(repo, 0.98, 0.90)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"tolerances: {path} [tool.quantgate.tolerances]"  # one header line


def test_a_tighter_project_tolerance_fails_what_the_defaults_pass(
        repo: Path, capsys: pytest.CaptureFixture[str]):
    _pyproject(repo, 'top1_agreement = "0.1% + 0.0001"')
    assert main(_runs(repo, 0.98, 0.977)) == 1
    assert "REGRESSED" in capsys.readouterr().out


def test_the_tolerance_option_overrides_the_project_table(
        repo: Path, capsys: pytest.CaptureFixture[str]):
    path = _pyproject(repo, "top1_agreement = 0.1")
    assert main([*_runs(repo, 0.98, 0.90), "--tolerance", "top1_agreement=0.001"]) == 1
    assert (f"tolerances: {path} [tool.quantgate.tolerances]; --tolerance for top1_agreement"
            in capsys.readouterr().out)


def test_the_nearest_project_table_is_found_from_a_subfolder(
        repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    path = _pyproject(repo, "top1_agreement = 0.1")
    sub = repo / "models" / "tools"
    sub.mkdir(parents=True)
    (sub / "pyproject.toml").write_text('[project]\nname = "tools"\n')  # no table: not the one
    monkeypatch.chdir(sub)
    assert main(_runs(repo, 0.98, 0.90)) == 0
    assert f"tolerances: {path} [tool.quantgate.tolerances]" in capsys.readouterr().out


def test_the_search_stops_at_the_top_of_the_checkout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    _pyproject(tmp_path, "top1_agreement = 0.1")  # outside the checkout: not the project's
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo")
    assert main(_runs(tmp_path, 0.98, 0.90)) == 1
    assert "tolerances: defaults (no pyproject.toml" in capsys.readouterr().out


def test_config_names_the_pyproject(repo: Path, capsys: pytest.CaptureFixture[str]):
    elsewhere = repo / "ci"
    elsewhere.mkdir()
    path = _pyproject(elsewhere, "top1_agreement = 0.1")
    assert main([*_runs(repo, 0.98, 0.90), "--config", str(path)]) == 0
    assert f"tolerances: {path} [tool.quantgate.tolerances]" in capsys.readouterr().out
    _pyproject(repo, "[tool.other]")  # a table without tolerances: the defaults, and it says so
    assert main([*_runs(repo, 0.98, 0.90), "--config", "pyproject.toml"]) == 1
    assert "tolerances: defaults (pyproject.toml sets no [tool.quantgate.tolerances])" in (
        capsys.readouterr().out)
    assert main([*_runs(repo, 0.98, 0.90), "--config", "missing.toml"]) == 2
    assert capsys.readouterr().err == (
        "quantgate: --config: got 'missing.toml', expected an existing pyproject.toml; fix the "
        "path, or leave it out to use the nearest one\n")


@pytest.mark.parametrize("table, message", [
    ('top1_agreement = "lots"', "[tool.quantgate]: tolerances: top1_agreement: got 'lots', "
                                "expected a number >= 0, a share such as '25%', or '25% + 0.001'; "
                                "e.g. top1_agreement = 0.005"),
    ("alpha = 2", "[tool.quantgate]: tolerances: alpha: got 2, expected a number between 0 and 1"),
])
def test_a_malformed_table_is_one_line_and_exit_2(
        repo: Path, capsys: pytest.CaptureFixture[str], table: str, message: str):
    path = _pyproject(repo, table)
    assert main(_runs(repo, 0.98, 0.98)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"quantgate: {path} {message}")
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n")


def test_a_tolerances_key_that_is_not_a_table_is_one_line_and_exit_2(
        repo: Path, capsys: pytest.CaptureFixture[str]):
    (repo / "pyproject.toml").write_text("[tool.quantgate]\ntolerances = 3\n")
    assert main(_runs(repo, 0.98, 0.98)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantgate: {repo / 'pyproject.toml'} [tool.quantgate]: tolerances: "
                          "got 3, expected a table of measure = tolerance")
    assert err.count("\n") == 1
