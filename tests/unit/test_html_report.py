"""The HTML report's data (histogram, flip matrix, inputs) and rendering, without a browser."""

from __future__ import annotations

import json

import numpy as np

from pytest_quantgate import drift
from pytest_quantgate.cli import main
from pytest_quantgate.report.html import render_html, write_html

PAYLOAD = '"><img src=x onerror=alert(1)><script>alert(1)</script>'


def test_histogram_bins_on_a_fixed_log_scale_and_counts_nan_apart():
    h = drift.histogram(np.array([0.0, 1e-9, 1e-3, 5.0, 1e6, np.inf]))
    counts = h["counts"]
    assert counts[0] == 2  # 0 and 1e-9: at or below 1e-7
    assert counts[int(round((-3 - drift.LOG10_MIN) / drift.LOG10_STEP))] == 1
    assert counts[-1] == 1  # 1e6: above the last edge
    assert sum(counts) == 5 and h["nonfinite"] == 1 and h["max"] == 1e6


def test_flip_matrix_counts_reference_label_against_backend_label():
    ref = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 2.0, 0]])
    out = np.array([[2.0, 0, 0], [0, 0, 2.0], [np.nan, 0, 0]])
    assert drift.flip_matrix(ref, out, 3) == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]


def test_named_inputs_come_first_then_each_backends_worst():
    diffs = {"a": np.array([0.1, 3.0, 0.2]), "b": np.array([np.inf, 0.0, 0.0])}
    picked = drift.pick_inputs(diffs, failing=["a"], named=[2])
    assert [i for i, _ in picked] == [2, 1, 0]
    assert picked[0][1] == ["named in inspect", "worst of a (max |Δ| 0.2)"]
    assert picked[2][1] == ["worst of b (max |Δ| NaN/Inf)"]


def hostile_report() -> dict:
    return {"format": "pytest-quantgate-report", "version": 2, "labels": ["ok", PAYLOAD],
            "config": {"reference": "ref", "n_inputs": 2}, "manifest": {"git": {"commit": PAYLOAD}},
            "inspected": [{"index": 0, "text": PAYLOAD, "label": PAYLOAD, "why": [PAYLOAD],
                           "logits": {"ref": [1.0, 2.0], PAYLOAD: [None, 1.0]}}],
            "backends": {PAYLOAD: {"verdict": "FAIL", "reason": PAYLOAD, "metrics": {},
                                   "checks": [{"check": PAYLOAD, "verdict": "failed",
                                               "reason": PAYLOAD}],
                                   "drift": {"histogram": drift.histogram(np.array([0.5, 1.0])),
                                             "flips": [[1, 0], [1, 0]]}}},
            "comparison": {"baseline": PAYLOAD, "deltas": [{"backend": PAYLOAD, "check": "x",
                                                           "name": PAYLOAD, "baseline": 1.0,
                                                           "now": 2.0, "regressed": True}]}}


def test_every_user_string_is_escaped():
    page = render_html(hostile_report())
    assert "<img" not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_what_was_not_measured_is_stated():
    page = render_html(hostile_report())
    assert "Not measured: latency was not timed in this run" in page
    assert "calibration clipping (no static-INT8 backend with a calibration set)" in page


def test_show_renders_a_stored_report_to_the_same_page(tmp_path, capsys):
    report = json.loads(json.dumps(hostile_report()))
    (tmp_path / "r.json").write_text(json.dumps(report))
    direct = write_html(report, tmp_path / "direct.html").read_text()
    assert main(["show", str(tmp_path / "r.json"), "--html", str(tmp_path / "out.html")]) == 0
    assert (tmp_path / "out.html").read_text() == direct
    assert f"quantgate HTML report: {tmp_path / 'out.html'}" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*tmp*"))


def test_show_html_rejects_a_file_that_is_not_a_quantgate_report(tmp_path, capsys):
    from pytest_quantgate.report.html.cli import render_stored

    (tmp_path / "b.json").write_text(json.dumps({"format": "other"}))
    try:
        render_stored(tmp_path / "b.json", tmp_path / "o.html")
    except Exception as exc:
        assert str(exc) == (f"{tmp_path / 'b.json'}: format: got 'other', expected a quantgate JSON "
                            "report (--quantgate-json); pass the file --quantgate-json wrote; "
                            "pytest-benchmark runs have no charts")
    else:
        raise AssertionError("no error")


def lm_entry(ppl: float, delta: float, top1: float, verdict: str = "PASS") -> dict:
    return {"precision": "int8", "verdict": verdict, "reason": "", "drift": None,
            "info": {"size_bytes": 300_000, "build_seconds": 0.4}, "tokens_per_second": 25000.0,
            "lm": {"docs": 3, "tokens": 120, "ppl": ppl},
            "metrics": {"reference_ppl": 6.2, "ppl": ppl, "ppl_delta": delta, "tokens": 120.0,
                        "top1_agreement": top1, "topk_overlap": 0.99, "max_abs_logit": 0.1329,
                        "mean_abs_logit": 0.02, "kl_div": 1e-5},
            "checks": [{"check": "ppl", "verdict": "passed", "reason": "within thresholds"}]}


def lm_report() -> dict:
    """A causal LM's report, trimmed: no labels, no drift, no per-input logits."""
    return {"format": "pytest-quantgate-report", "version": 2, "labels": [], "inspected": [],
            "config": {"task": "causal-lm", "reference": "torch-fp32", "n_inputs": 3,
                       "window": 64, "stride": 32},
            "manifest": {}, "reference": {"lm": {"docs": 3, "tokens": 120, "ppl": 6.2}},
            "backends": {"onnx-int8-static": lm_entry(6.2041, 0.00066, 0.979),
                         PAYLOAD: lm_entry(6.5137, 0.0506, 0.905, "FAIL"),
                         "broken": {"precision": "fp16", "verdict": "ERROR", "metrics": {},
                                    "drift": None, "status_reason": "export failed"}}}


def test_an_lm_report_shows_perplexity_not_class_measures():
    page = render_html(lm_report())
    assert ("<th>ppl</th><th>ppl Δ</th><th>next top-1</th><th>top-k</th><th>final max|Δ|</th>"
            in page) and "acc Δ" not in page
    assert ("<td>6.204</td><td>+0.07%</td><td>0.979</td><td>0.990</td><td>0.1329</td>" in page)
    assert "<td>6.514</td><td>+5.06%</td><td>0.905</td>" in page
    assert "torch-fp32 on 3 documents (120 tokens, perplexity 6.2)" in page
    chart = page.split('<h2 id="perplexity">Perplexity per backend</h2>')[1].split("<h2")[0]
    assert 'class="chart perplexity"' in chart and chart.count('class="bar"') == 2
    assert 'class="threshold"' in chart and "6.204 +0.07%" in chart
    assert "Not measured: perplexity of broken" in chart
    assert "perplexity 6.2 (torch-fp32) -&gt; 6.204 (onnx-int8-static) · Δ +0.07% · 120 tokens · " \
           "3 documents · 25,000 tokens/s" in page
    assert "Not measured: perplexity (export failed)" in page
    assert "drift data" not in page and "label names" not in page and "flip matrix" not in page
    assert "perplexity change (%, lower is better)" in page


def test_an_lm_report_escapes_hostile_backend_names():
    report = lm_report()
    report["config"]["reference"] = PAYLOAD
    page = render_html(report)
    assert "<img" not in page and "<script" not in page
    assert page.count("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;") >= 6  # table, chart, sections


def test_show_prints_an_lm_report(tmp_path, capsys):
    (tmp_path / "lm.json").write_text(json.dumps(lm_report()))
    assert main(["show", str(tmp_path / "lm.json")]) == 0
    out = capsys.readouterr().out
    assert "reference torch-fp32 on 3 documents (120 tokens, perplexity 6.2)" in out
    lines = out.splitlines()
    head = next(line for line in lines if line.startswith("backend"))
    # the terminal table's columns (report/columns.py): one spec for every view
    assert head.split() == ["backend", "prec", "size", "MB", "build", "s", "ppl", "ppl", "Δ",
                            "next", "top-1", "top-k", "final", "max|Δ|", "checks", "p/f/s",
                            "verdict"]
    assert next(line for line in lines if line.startswith("onnx-int8-static")).split() == [
        "onnx-int8-static", "int8", "0.30", "0.4", "6.204", "+0.07%", "0.979", "0.990", "0.1329",
        "1/0/0", "PASS"]
    assert next(line for line in lines if line.startswith("broken")).split() == [
        "broken", "fp16", "-", "-", "-", "-", "-", "-", "-", "0/0/0", "ERROR"]


# NUL, ESC, BEL, CR, a C1 control (NEL) and the bidi override U+202E: none may reach the page
HIDDEN = "ok\x00 \x1b[31mred\x07\r\x85 \u202eevil\u2066x\u2069\u200f"
HIDDEN_CODE_POINTS = ("\x00", "\x1b", "\x07", "\r", "\x85", "\u202e", "\u2066", "\u2069", "\u200f")


def test_esc_removes_control_characters_and_shows_bidi_controls_as_escapes():
    from pytest_quantgate.report.html.charts import esc

    out = esc(HIDDEN + "\ttab\nline <b>")
    assert not any(c in out for c in HIDDEN_CODE_POINTS)
    assert out == ("ok [31mred \\u202eevil\\u2066x\\u2069\\u200f\ttab\nline &lt;b&gt;")


def test_a_page_carries_no_control_or_bidi_characters_from_labels_or_texts():
    report = hostile_report()
    report["labels"] = ["ok", HIDDEN]
    report["config"]["reference"] = HIDDEN
    report["inspected"][0].update(text=HIDDEN, label=HIDDEN, why=[HIDDEN])
    report["backends"][HIDDEN] = report["backends"].pop(PAYLOAD)
    page = render_html(report)
    assert not any(c in page for c in HIDDEN_CODE_POINTS)
    assert "\\u202eevil" in page  # visible where the override was, in text and attributes


def test_the_terminal_views_show_user_text_safely() -> None:
    from pytest_quantgate.records import CheckResult, Worst
    from pytest_quantgate.report.diagnosis import diagnosis
    from pytest_quantgate.report.table import render

    bad = "evil\x1b[2Jname\u202e"
    lines = render([(bad, "fp32", "PASS")], ("backend", "prec", "verdict"))
    record = CheckResult(bad, "topk", "failed", f"top-1 flips on {bad}", (), 1,
                         (Worst(0, bad, bad, 1.0, ((bad, 0.9),), ((bad, 0.8),)),))
    for text in ["\n".join(lines), diagnosis(record)]:
        assert "\x1b" not in text and "\u202e" not in text
        assert "\\u202e" in text  # shown, not dropped: the reader sees something was there
