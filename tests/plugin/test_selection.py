"""Selecting the gate: one backend exactly with ``-k "::<backend>::"`` (``-k`` matches
substrings, so a backend whose name starts another's cannot be picked by its name alone), serial
and under pytest-xdist; and path arguments that name test files leave the gate out."""

from __future__ import annotations

import pytest
from fake_project import BACKENDS_TOML

# A name that starts another one, as onnx-int8-static starts onnx-int8-static-allops in the demo.
TWINS = BACKENDS_TOML + '\n[[tool.quantgate.backend]]\nname = "same-allops"\nkind = "fake"\n'
TABLE = 'backends = ["same", "same-allops"]'
CHECKS = 5  # logits, topk, accuracy, contract, determinism


def _ids(result: pytest.RunResult) -> set[str]:
    return {line.split(" ")[0] for line in result.stdout.lines if line.startswith("quantgate::")}


def test_a_bare_name_matches_every_backend_it_starts(project):
    result = project(TABLE, backends_toml=TWINS).runpytest("--quantgate", "-k", "same")
    result.assert_outcomes(passed=2 * CHECKS)  # pytest's substring rule: both backends


def test_the_id_segment_selects_one_backend_exactly(project):
    pytester = project(TABLE, backends_toml=TWINS)
    result = pytester.runpytest("--quantgate", "-v", "-k", "::same::")
    result.assert_outcomes(passed=CHECKS)
    assert {i.split("::")[1] for i in _ids(result)} == {"same"}
    result = pytester.runpytest("--quantgate", "-v", "-k", "::same-allops::")
    result.assert_outcomes(passed=CHECKS)
    assert {i.split("::")[1] for i in _ids(result)} == {"same-allops"}
    result = pytester.runpytest("--quantgate", "-v", "-k", "::same::topk")
    result.assert_outcomes(passed=1)
    assert _ids(result) == {"quantgate::same::topk"}
    result = pytester.runpytest("--quantgate", "-k", "not ::same::")
    result.assert_outcomes(passed=CHECKS, deselected=CHECKS)


def test_the_id_segment_selects_one_backend_under_xdist(project):
    pytest.importorskip("xdist")
    pytester = project(TABLE, backends_toml=TWINS)
    result = pytester.runpytest_subprocess("--quantgate", "-p", "no:cacheprovider", "-n", "2",
                                           "-k", "::same::")
    result.assert_outcomes(passed=CHECKS)
    result.stdout.fnmatch_lines(["same *PASS"])
    assert "same-allops" not in result.stdout.str().split("= quantgate =")[-1]


# -- path arguments ------------------------------------------------------------------------------
def _with_tests(project):  # type: ignore[no-untyped-def]
    pytester = project('backends = ["same"]')
    pytester.mkpydir("tests")
    (pytester.path / "tests" / "test_mine.py").write_text(
        "def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    return pytester


@pytest.mark.parametrize("args", [("tests/test_mine.py",), ("tests/test_mine.py::test_one",)])
def test_naming_test_files_leaves_the_gate_out_and_says_so(project, args):
    result = _with_tests(project).runpytest("--quantgate", *args)
    result.assert_outcomes(passed=len(args[0].split("::")) % 2 + 1)  # 2 tests, or the one named
    result.stdout.fnmatch_lines([f"quantgate: gate items not collected: the run names test files "
                                 f"only ({args[0]}); run without paths, or with a directory such "
                                 "as ., to gate"])
    assert "quantgate::" not in result.stdout.str() and "= quantgate =" not in result.stdout.str()


@pytest.mark.parametrize("args", [(), (".",), ("tests",), ("tests", "tests/test_mine.py")])
def test_no_path_or_a_directory_keeps_the_gate(project, args):
    result = _with_tests(project).runpytest("--quantgate", *args)
    result.assert_outcomes(passed=CHECKS + 2)
    assert "gate items not collected" not in result.stdout.str()


def test_naming_a_test_file_under_xdist_collects_the_same_everywhere(project):
    pytest.importorskip("xdist")
    result = _with_tests(project).runpytest_subprocess("--quantgate", "-p", "no:cacheprovider",
                                                       "-n", "2", "tests/test_mine.py")
    result.assert_outcomes(passed=2)  # no "different tests were collected" between workers


def test_own_tests_per_backend_are_selected_by_their_bracketed_id(project):
    pytester = project(TABLE, backends_toml=TWINS)
    pytester.makepyfile(test_mine="def test_agrees(quantgate_backend):\n    pass\n")
    result = pytester.runpytest("--quantgate", "-v", "-k", "::same:: or [same]")
    result.assert_outcomes(passed=CHECKS + 1)
    result.stdout.fnmatch_lines(["*test_mine.py::test_agrees[[]same[]] PASSED*"])
    assert "same-allops" not in result.stdout.str().split("= quantgate =")[0]
