"""The HTML report as a reader sees it in headless Chromium: no text in a chart drawn over other
text or cut off by the chart's edge, the verdicts on the first screen, the backends folded.

Text boxes are measured, not estimated: each ``<text>``'s box (``getBBox``) is mapped through
its transform (``getCTM``: the 45- and 35-degree labels are slanted boxes), and every pair in a
chart is tested for overlap by the separating-axis test. Screenshots of every page rendered here
are saved in the test's temporary directory.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
from html_hostile import SCRIPT

# Slack in px: two boxes that only touch (adjacent rows of a bar chart) do not overlap.
TOUCH = 0.5
SCREEN = {"width": 1280, "height": 800}  # a laptop's first screen
# The demo's backend names: long ones, and one that starts another
DEMO_NAMES = ["torch-bf16", "torch-fp16", "torch-int8-dynamic", "onnx-fp32", "onnx-fp16",
              "onnx-int8-dynamic", "onnx-int8-static", "onnx-int8-static-allops",
              "user-swapped-export"]

MEASURE = """() => [...document.querySelectorAll('svg.chart')].map(svg => ({
  label: svg.getAttribute('aria-label'),
  width: svg.viewBox.baseVal.width, height: svg.viewBox.baseVal.height,
  texts: [...svg.querySelectorAll('text')].map(t => {
    const b = t.getBBox(), m = t.getCTM();
    const corners = [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height],
                     [b.x, b.y + b.height]];
    return {text: t.lastChild ? t.lastChild.textContent : '',
            quad: corners.map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f])};
  })}))"""


def _project(quad: list[list[float]], axis: tuple[float, float]) -> tuple[float, float]:
    dots = [x * axis[0] + y * axis[1] for x, y in quad]
    return min(dots), max(dots)


def overlap(a: list[list[float]], b: list[list[float]]) -> bool:
    """Two convex quadrilaterals intersect unless one of their edges' normals separates them."""
    for quad in (a, b):
        for (x1, y1), (x2, y2) in itertools.pairwise([*quad, quad[0]]):
            normal = (y1 - y2, x2 - x1)
            length = (normal[0] ** 2 + normal[1] ** 2) ** 0.5
            if length == 0:
                continue
            axis = (normal[0] / length, normal[1] / length)
            (a0, a1), (b0, b1) = _project(a, axis), _project(b, axis)
            if a1 <= b0 + TOUCH or b1 <= a0 + TOUCH:
                return False
    return True


def render(browser: Any, report: dict[str, Any], path: Path, *, unfold: bool) -> Any:
    from pytest_quantgate.report.html import write_html

    write_html(report, path)
    page = browser.new_page(viewport=SCREEN)
    page.goto(path.as_uri())
    if unfold:  # (the test's own script, through the browser's devtools: the page runs none)
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
    return page


def layout_problems(page: Any) -> list[str]:
    problems = []
    charts = page.evaluate(MEASURE)
    assert charts, "no chart on the page"
    for chart in charts:
        w, h = chart["width"], chart["height"]
        for t in chart["texts"]:
            xs, ys = [p[0] for p in t["quad"]], [p[1] for p in t["quad"]]
            if min(xs) < -TOUCH or min(ys) < -TOUCH or max(xs) > w + TOUCH or max(ys) > h + TOUCH:
                problems.append(f"{chart['label']}: {t['text']!r} runs past the chart's edge "
                                f"({min(xs):.0f}..{max(xs):.0f} x {min(ys):.0f}..{max(ys):.0f} "
                                f"in {w:.0f} x {h:.0f})")
        for one, two in itertools.combinations(chart["texts"], 2):
            if overlap(one["quad"], two["quad"]):
                problems.append(f"{chart['label']}: {one['text']!r} overlaps {two['text']!r}")
    return problems


def demo_like(report: dict[str, Any]) -> dict[str, Any]:
    """The hostile report with the demo's nine backends (copies of its three), so the page is
    as crowded as the demo's: scatter points that coincide, long names."""
    out = copy.deepcopy(report)
    entries = list(report["backends"].values())
    out["backends"] = {name: {**copy.deepcopy(entries[i % len(entries)]), "name": name}
                       for i, name in enumerate(DEMO_NAMES)}
    return out


def lm_report() -> dict[str, Any]:
    """A causal LM's report with worst documents, hostile where users write text."""
    def entry(ppl: float, verdict: str) -> dict[str, Any]:
        worst = [{"index": i, "text": f"The council voted {i} to 4 {SCRIPT}", "label": None,
                  "score": 1.4 - i / 10,
                  "metric": "ppl ratio", "reference": [["' The'", 0.35], [f"'{SCRIPT}'", 0.1]],
                  "backend": [["' A'", 0.3], ["' The'", 0.2]]} for i in range(3)]
        return {"precision": "int8", "kind": "onnx-int8-static", "verdict": verdict,
                "reason": "ppl: ppl_delta 0.14 > 0.02" if verdict != "PASS" else "",
                "info": {"size_bytes": 1_000_000 + ppl * 1000}, "drift": None,
                "lm": {"docs": 3, "tokens": 120}, "tokens_per_second": 9000.0,
                "metrics": {"reference_ppl": 20.6, "ppl": ppl, "ppl_delta": ppl / 20.6 - 1,
                            "tokens": 120.0, "top1_agreement": 0.9},
                "checks": [{"check": "ppl", "verdict": "failed" if verdict != "PASS" else
                            "passed", "reason": "r", "worst": worst}]}
    names = DEMO_NAMES[:-1] + ["user-corrupted-export"]
    return {"format": "pytest-quantgate-report", "version": 3, "labels": [], "inspected": [],
            "config": {"task": "causal-lm", "reference": "torch-fp32", "n_inputs": 3},
            "manifest": {}, "reference": {"lm": {"docs": 3, "tokens": 120, "ppl": 20.6}},
            "backends": {n: entry(20.6 + (30 if "allops" in n or "user" in n else 0.01 * i),
                                  "FAIL (expected)" if "allops" in n or "user" in n else "PASS")
                         for i, n in enumerate(names)}}


@pytest.mark.parametrize("which", ["hostile", "demo-like", "causal-lm"])
def test_no_chart_text_overlaps_or_is_cut_off(browser, hostile_report, tmp_path, which):
    report = {"hostile": hostile_report, "demo-like": demo_like(hostile_report),
              "causal-lm": lm_report()}[which]
    page = render(browser, report, tmp_path / f"{which}.html", unfold=True)
    assert layout_problems(page) == []


def test_the_first_screen_shows_every_verdict_and_reason(browser, hostile_report, tmp_path):
    report = demo_like(hostile_report)
    page = render(browser, report, tmp_path / "first-screen.html", unfold=False)
    page.screenshot(path=str(tmp_path / "first-screen-top.png"))  # what the reader sees first
    rows = page.locator("table.verdicts tr")
    assert rows.count() == len(DEMO_NAMES) + 1
    for i, name in enumerate(DEMO_NAMES, start=1):
        row = rows.nth(i)
        assert row.locator("td.name").inner_text() == name
        verdict = row.locator("td.verdict")
        assert verdict.inner_text() == report["backends"][name]["verdict"]
        for cell in (verdict, row.locator("td.reason")):
            box = cell.bounding_box()
            assert box is not None and box["y"] + box["height"] <= SCREEN["height"], (name, box)
        if report["backends"][name]["verdict"] != "PASS":
            assert row.locator("td.reason").inner_text().startswith("logits:")


def test_backends_fold_and_the_failing_ones_are_open(browser, hostile_report, tmp_path):
    page = render(browser, hostile_report, tmp_path / "fold.html", unfold=False)
    sections = page.locator("details.backend")
    assert sections.count() == len(hostile_report["backends"])
    for name, entry in hostile_report["backends"].items():
        section = page.locator("details.backend").filter(has=page.locator(
            "summary .name", has_text=name)).first
        assert section.evaluate("d => d.open") == (entry["verdict"] != "PASS"), name
    closed = page.locator("#backend-same")  # a PASS: folded
    closed.locator("summary").click()  # the browser's own toggle: no script in the page
    assert closed.evaluate("d => d.open")
    assert closed.locator("svg.hist").first.is_visible()
    assert page.locator("script").count() == 0


def test_the_lm_page_shows_worst_documents_and_why_calibration_is_absent(browser, tmp_path):
    page = render(browser, lm_report(), tmp_path / "lm.html", unfold=False)
    failing = page.locator("details.backend[open]")
    assert failing.count() == 2
    table = failing.first.locator("table.worst")
    assert table.locator("tr").count() == 4  # header and the three documents
    assert SCRIPT in table.inner_text()  # shown as text, never run
    text = page.inner_text("ul.gaps")
    assert "the calibration check is for text classification only" in text
    assert "no static-INT8 backend" not in text
