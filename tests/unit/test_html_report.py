"""The HTML report's data (histogram, flip matrix, inputs) and rendering, without a browser."""

from __future__ import annotations

import json

import numpy as np

from pytest_quantgate.cli import main
from pytest_quantgate.report import drift
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
