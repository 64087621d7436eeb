"""The HTML report opened in headless Chromium: no console errors, every section and chart
drawn, and nothing from the data executed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from html_hostile import IMG, NAMED, SCRIPT


def open_report(browser: Any, report: dict[str, Any], tmp_path: Path) -> tuple[Any, list[str]]:
    from pytest_quantgate.report.html import write_html

    path = write_html(report, tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: problems.append(f"request: {r.url}")
            if not r.url.startswith("file:") else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def test_report_opens_cleanly_with_every_section_and_chart(browser, hostile_report, tmp_path):
    page, problems = open_report(browser, hostile_report, tmp_path)
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert problems == []
    for section in ("verdicts", "inputs", "backends", "tradeoffs", "comparison", "not-measured"):
        assert page.locator(f"#{section}").count() == 1, section
    n_backends = len(hostile_report["backends"])
    assert page.locator("svg.hist").count() == n_backends
    assert page.locator("svg.flips").count() == n_backends
    assert page.locator("svg.scatter").count() == 1  # size vs quality; latency not timed
    n_inputs = len(hostile_report["inspected"])
    assert page.locator("svg.logits").count() == n_inputs
    # softmax side by side: the reference and every backend for every input
    assert page.locator("svg.softmax").count() == n_inputs * (n_backends + 1)
    # the swapped-input backend's flips are drawn as off-diagonal cells
    flips = page.locator("#backend-swapped svg.flips rect.flip")
    assert flips.count() > 0
    assert "latency was not timed" in page.inner_text("body")
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_nothing_from_the_data_runs(browser, hostile_report, tmp_path):
    page, problems = open_report(browser, hostile_report, tmp_path)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert problems == []
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0  # the payloads' <img> never became an element
    assert page.locator("b").count() == 0
    text = page.inner_text("body")
    assert SCRIPT in text and NAMED in text and IMG in text  # shown as text instead


def test_page_without_csp_still_runs_nothing(browser, hostile_report, tmp_path):
    """The escaping alone holds: the same page with its CSP removed runs no payload either."""
    from pytest_quantgate.report.html import render_html
    from pytest_quantgate.report.html.page import CSP

    html = render_html(hostile_report)
    assert CSP in html
    stripped = html.replace(CSP, "script-src *")
    path = tmp_path / "no-csp.html"
    path.write_text(stripped, encoding="utf-8")
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []


@pytest.mark.parametrize("version", [1])
def test_an_older_report_renders_and_says_what_it_lacks(browser, hostile_report, tmp_path,
                                                        version):
    old = {k: v for k, v in hostile_report.items()
           if k not in ("inspected", "labels", "created", "comparison")}
    old["version"] = version
    old["backends"] = {n: {k: v for k, v in e.items() if k != "drift"}
                       for n, e in hostile_report["backends"].items()}
    page, problems = open_report(browser, old, tmp_path)
    assert problems == []
    assert page.locator("svg.hist").count() == 0
    assert "report version 1" in page.inner_text("body")
