"""The page: head (CSS, a CSP that forbids every script), manifest, verdict table, sections."""

from __future__ import annotations

from typing import Any

from ...snapshot import BackendSummary, RunSnapshot
from .. import columns
from . import sections
from .charts import esc
from .views import CLASSIFICATION, view_for

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top;font-size:13px}th{background:#f4f4f4}
.verdict.pass,.v-passed{color:#1a7f37;font-weight:600}.verdict.fail,.v-failed,.v-error{color:#c62828;
font-weight:600}.not-measured{color:#8a6d00;background:#fff8e1;padding:4px 8px;display:inline-block}
.panels{display:flex;flex-wrap:wrap;gap:6px}.panel{border:1px solid #eee;padding:4px}
.panel-title{font-size:12px;font-weight:600}.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.legend{font-size:12px}.key{margin-right:12px;white-space:nowrap}.key i{display:inline-block;width:10px;
height:10px;margin-right:4px}.why,.note,.reason{color:#555;font-size:13px}.bad{color:#c62828}
section.input,section.backend{border-top:1px dashed #ccc;margin-top:18px}
tr.regressed td{background:#fdecea}code{background:#f4f4f4;padding:0 3px}
"""
# No script runs in this page: the CSP forbids it, and no data is ever written unescaped.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_page(report: dict[str, Any]) -> str:
    backends: dict[str, Any] = report.get("backends") or {}
    view = view_for(report)
    body = [header(report), verdict_table(report), view.data_section(report),
            '<h2 id="backends">Per backend</h2>']
    body += [sections.backend(name, entry, view.backend_detail(name, entry, report))
             for name, entry in backends.items()]
    if not report.get("labels") and backends and view is CLASSIFICATION:
        body.append(sections.not_measured("label names (report version 1): flip matrices need them"))
    body += [sections.tradeoffs(report, view.quality_label, view.quality),
             sections.comparison(report), unmeasured(report)]
    title = f"quantgate report · {(report.get('config') or {}).get('reference', '')}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            + "".join(body) + "</body></html>\n")


def header(report: dict[str, Any]) -> str:
    m = report.get("manifest") or {}
    git = m.get("git") or {}
    machine = m.get("machine") or {}
    packages = ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items() if v)
    data = ", ".join(f"{k} {str(v)[:16]}" for k, v in (m.get("data_sha256") or {}).items())
    commit = f"{str(git.get('commit') or 'unknown')[:12]}{' (dirty)' if git.get('dirty') else ''}"
    rows = [("reference", view_for(report).reference_line(report)),
            ("summary", report.get("summary", "")),
            *(("warning", str(w)) for w in report.get("warnings") or ()),
            ("model sha256", str(m.get("model_sha256") or "")[:16]), ("data sha256", data),
            ("commit", commit), ("packages", packages),
            ("machine", f"{machine.get('cpu')} · {machine.get('cores')} cores · "
                        f"flags {', '.join(machine.get('cpu_flags') or []) or 'unknown'}"),
            ("python", f"{m.get('python')} · {m.get('platform')}"),
            ("created", report.get("created") or "not recorded (report version 1)"),
            ("report", f"{report.get('format')} version {report.get('version')}")]
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<h1>quantgate report</h1><table class="manifest">{cells}</table>'


def _p50(entry: BackendSummary) -> str:
    lat = entry.latency
    timed = [(k, p) for k, s in lat.items() if (p := columns.number(s.get("p50"))) is not None]
    return ", ".join(f"b{k}: {p * 1e3:.2f}" for k, p in timed) or "not timed"


def verdict_table(report: dict[str, Any]) -> str:
    snap = RunSnapshot.from_dict(report)
    cols = (columns.NAME, columns.PRECISION, columns.SIZE, columns.BUILD,
            *columns.quality(snap.task))
    rows = []
    for e in snap.backends.values():
        cls = "pass" if e.verdict == "PASS" else "fail"
        cells = [*(c.cell(e) for c in cols), _p50(e)]
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells)
                    + f'<td class="verdict {cls}">{esc(e.verdict)}</td>'
                    f"<td>{esc(e.reason)}</td></tr>")
    head = (*(c.header for c in cols), "p50 ms", "verdict", "reason")
    header_row = "".join(f"<th>{esc(h)}</th>" for h in head)
    not_run = report.get("not_run") or []
    extra = f"<p class=\"note\">not run: {esc(', '.join(not_run))}</p>" if not_run else ""
    return (f'<h2 id="verdicts">Verdicts</h2><table class="verdicts"><tr>{header_row}</tr>'
            + "".join(rows) + "</table>" + extra)


def unmeasured(report: dict[str, Any]) -> str:
    """What this run did not measure, stated plainly."""
    backends: dict[str, Any] = report.get("backends") or {}
    checks = {c.get("check") for e in backends.values() for c in e.get("checks") or []}
    gaps = []
    if not any(e.get("latency") for e in backends.values()):
        gaps.append("latency (opt-in: latency = true)")
    if "calibration" not in checks:
        gaps.append("calibration clipping (no static-INT8 backend with a calibration set)")
    if "adversarial" not in checks:
        gaps.append("adversarial slice (no adversarial check ran)")
    if not report.get("comparison"):
        gaps.append("baseline comparison (--quantgate-compare)")
    gaps += view_for(report).gaps
    missing = sorted({f"{n}: {c.get('check')}" for n, e in backends.items()
                      for c in e.get("checks") or [] if c.get("verdict") == "missing"})
    items = "".join(f"<li>{esc(g)}</li>" for g in [*gaps, *missing])
    return (f'<h2 id="not-measured">Not measured in this run</h2><ul class="gaps">{items}</ul>'
            if items else "")
