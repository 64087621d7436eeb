"""--quantgate-html and the `html`/`inspect` keys, on the fake backend."""

from __future__ import annotations

import json

from pytest_quantgate.cli import main


def test_html_report_is_written_with_the_json_and_rendered_again_from_it(project):
    pytester = project('backends = ["same", "swapped"]\n'
                       'inspect = ["goal cup market", "war treaty minister"]')
    result = pytester.runpytest("--quantgate", "--quantgate-json", "out/r.json",
                                "--quantgate-html", "out/r.html")
    result.stdout.fnmatch_lines(["quantgate HTML report: *out/r.html"])
    report = json.loads((pytester.path / "out" / "r.json").read_text())
    assert report["labels"] == ["World", "Sports", "Business"]
    assert sum(map(sum, report["backends"]["swapped"]["drift"]["flips"])) == 45
    named = [i for i in report["inspected"] if "named" in i["why"][0]]
    assert {i["text"] for i in named} == {"goal cup market", "war treaty minister"}
    assert all(set(i["logits"]) == {"ref", "same", "swapped"} for i in named)
    assert main(["show", str(pytester.path / "out" / "r.json"), "--html",
                 str(pytester.path / "again.html")]) == 0
    assert (pytester.path / "again.html").read_text() == (pytester.path / "out" / "r.html").read_text()
    assert not list((pytester.path / "out").glob(".*tmp*"))


def test_html_key_in_pyproject_writes_the_page_without_json(project):
    pytester = project('backends = ["same"]\nhtml = "reports/q.html"')
    pytester.runpytest("--quantgate")
    page = (pytester.path / "reports" / "q.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'class="chart hist"' in page
    assert not (pytester.path / "reports" / "q.json").exists()


def test_inspect_must_be_a_list_of_strings(project):
    pytester = project('backends = ["same"]\ninspect = "goal"')
    result = pytester.runpytest("--quantgate")
    result.stderr.fnmatch_lines(["*inspect: got 'goal', expected a list of strings; see the README"])


def test_html_report_with_latency_items_shows_their_p50(project):
    # The page once read a "median" key that latency records do not have: the whole report
    # (JSON included) crashed at session end whenever latency and html were both on.
    pytester = project('backends = ["same"]\nhtml = "r.html"\nlatency = true\n'
                       'latency_batch_sizes = [2]\nlatency_rounds = 3\nlatency_seconds = 0\n'
                       'latency_warmup = 0')
    result = pytester.runpytest("--quantgate")
    assert result.ret == 0, result.stdout.str()
    page = (pytester.path / "r.html").read_text()
    assert "b2: " in page and "latency against quality" in page
