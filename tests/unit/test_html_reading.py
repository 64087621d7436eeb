"""The HTML report reads well without a browser: labels shortened to fit without losing what
tells them apart, the page's order and folding, a causal LM's worst documents and its notes.
(tests/browser/test_html_layout.py measures the drawn page.)"""

from __future__ import annotations

import copy

from pytest_quantgate.report.html import render_html
from pytest_quantgate.report.html.textfit import ELLIPSIS, fit, fit_all, text_width

PAYLOAD = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
TENSORS = ["/model/bert/encoder/layer.0/attention/self/query/MatMul_output_0",
           "/model/bert/encoder/layer.1/attention/self/query/MatMul_output_0",
           "/model/bert/encoder/layer.11/attention/output/dense/MatMul_output_0"]


def test_a_long_name_is_shortened_in_the_middle_to_its_width():
    short = fit(TENSORS[0], 150, 9)
    assert text_width(short, 9) <= 150 and ELLIPSIS in short
    assert short.startswith("/mod") and short.endswith("MatMul_output_0")
    assert fit("World", 150, 9) == "World"  # what fits is left alone


def test_names_sharing_a_prefix_stay_distinct():
    shown = fit_all(TENSORS, 200, 9)
    assert len(set(shown)) == 3 and all(s.startswith(ELLIPSIS + "/") for s in shown)
    assert all(text_width(s, 9) <= 200 for s in shown)


def test_wide_scripts_are_measured_wider():
    assert text_width("中国股市大涨", 10) > text_width("abcdef", 10)


def classification() -> dict:
    entry = {"verdict": "PASS", "reason": "", "precision": "fp32", "kind": "fake", "metrics": {},
             "checks": [{"check": "logits", "verdict": "passed", "reason": "within thresholds"}]}
    failing = {**copy.deepcopy(entry), "verdict": "FAIL", "reason": PAYLOAD}
    return {"format": "pytest-quantgate-report", "version": 3, "labels": ["a", "b"],
            "config": {"reference": "ref", "n_inputs": 2}, "manifest": {}, "summary": "2 judged",
            "backends": {"good": entry, "bad": failing}}


def test_verdicts_come_first_and_the_run_details_fold_below():
    page = render_html(classification())
    assert page.index('id="verdicts"') < page.index('<details class="run"')
    assert page.index('<details class="run"') < page.index('id="backends"')
    assert "p50 ms" not in page  # nothing timed: no column of "not timed"
    assert '<a href="#backend-good">good</a>' in page


def test_backend_sections_fold_open_where_the_verdict_is_not_pass():
    page = render_html(classification())
    assert '<details class="backend" id="backend-good"><summary>' in page
    assert '<details class="backend" id="backend-bad" open><summary>' in page
    assert "<img" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_static_int8_backend_without_its_calibration_item_is_said_so():
    report = classification()
    report["backends"]["good"]["kind"] = "onnx-int8-static"
    page = render_html(report)
    assert "the calibration check of good did not run in this selection" in page
    assert "no static-INT8 backend" not in page


def lm_report() -> dict:
    worst = [{"index": i, "text": f"Doc {i} {PAYLOAD}", "label": None, "score": 2.0 - i,
              "metric": "ppl ratio", "reference": [["' The'", 0.35]],
              "backend": [[f"'{PAYLOAD}'", 0.3]]} for i in range(7)]
    entry = {"verdict": "FAIL", "reason": "ppl: ppl_delta 0.1 > 0.02", "precision": "int8",
             "kind": "onnx-int8-static", "lm": {"docs": 7, "tokens": 70},
             "metrics": {"ppl": 22.0, "reference_ppl": 20.0, "ppl_delta": 0.1},
             "checks": [{"check": "ppl", "verdict": "failed", "reason": "r", "worst": worst},
                        {"check": "next-token", "verdict": "passed", "reason": "r",
                         "worst": worst[:1]}]}
    return {"format": "pytest-quantgate-report", "version": 3, "labels": [], "inspected": [],
            "config": {"task": "causal-lm", "reference": "torch-fp32", "n_inputs": 7},
            "manifest": {}, "reference": {"lm": {"docs": 7, "tokens": 70, "ppl": 20.0}},
            "backends": {"allops": entry}}


def test_an_lm_backend_shows_its_worst_documents_with_both_sides_next_tokens():
    page = render_html(lm_report())
    table = page.split('<table class="worst">')[1].split("</table>")[0]
    assert "<th>ppl ratio</th><th>next tokens: torch-fp32</th><th>next tokens: allops</th>" \
        in table
    assert table.count("<tr>") == 1 + 5  # the header and the five worst of seven
    assert "<td>2</td>" in table and "&#x27; The&#x27; 0.35" in table
    assert "<img" not in page and "<script" not in page


def test_an_lm_report_says_why_calibration_clipping_is_absent():
    page = render_html(lm_report())
    assert "the calibration check is for text classification only so far" in page
    assert "no static-INT8 backend with a calibration set" not in page
