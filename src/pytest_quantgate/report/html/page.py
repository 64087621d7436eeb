"""The page: head (CSS, a CSP that forbids every script), the verdicts on the first screen, then
the run's details, the task's data and one collapsible section per backend."""

from __future__ import annotations

from typing import Any

from ...snapshot import BackendSummary, RunSnapshot
from .. import columns
from . import sections
from .charts import esc
from .views import CLASSIFICATION, view_for

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 6px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top;font-size:13px}th{background:#f4f4f4}
.verdict.pass,.v-passed{color:#1a7f37;font-weight:600}.verdict.fail,.v-failed,.v-error{color:#c62828;
font-weight:600}.not-measured{color:#8a6d00;background:#fff8e1;padding:4px 8px;display:inline-block}
.lede{margin:0 0 4px}.lede .k{font-weight:600}
.warning{color:#8a6d00;background:#fff8e1;padding:4px 8px;margin:4px 0}
table.verdicts td,table.verdicts th{white-space:nowrap}table.verdicts td.reason{white-space:normal;
min-width:240px}.clamp{display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;
overflow:hidden}table.verdicts a{color:inherit}
details>summary{cursor:pointer;padding:5px 0}details.run>summary{color:#555;font-size:13px}
details.backend,details.input{border-top:1px dashed #ccc}
details.backend>summary .name{font-weight:600;font-size:16px}
details.backend>summary .reason{display:block;margin:2px 0 0 18px}
details.input>summary .input-text{font-weight:600}details.input>summary .why{margin-left:8px}
.panels{display:flex;flex-wrap:wrap;gap:6px}.panel{border:1px solid #eee;padding:4px}
.panel-title{font-size:12px;font-weight:600}.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.legend{font-size:12px}.key{margin-right:12px;white-space:nowrap}.key i{display:inline-block;width:10px;
height:10px;margin-right:4px}.why,.note,.reason{color:#555;font-size:13px}.bad{color:#c62828}
table.worst td.doc{max-width:560px}table.worst td.tokens{white-space:nowrap;font-size:12px}
tr.regressed td{background:#fdecea}code{background:#f4f4f4;padding:0 3px}
"""
# No script runs in this page: the CSP forbids it, and no data is ever written unescaped.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_page(report: dict[str, Any]) -> str:
    """The first screen holds the verdicts (each backend's verdict and reason); below it the run's
    details, the task's data section and one collapsible section per backend, open where the
    verdict is not PASS, so a reader lands on what needs looking at."""
    backends: dict[str, Any] = report.get("backends") or {}
    view = view_for(report)
    body = [header(report), verdict_table(report), run_details(report),
            view.data_section(report), '<h2 id="backends">Per backend</h2>']
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
    """The title, the reference and the run's one-line summary, and its warnings."""
    lede = (f'<p class="lede"><span class="k">reference</span> '
            f'{esc(view_for(report).reference_line(report))}'
            f' · {esc(report.get("summary", ""))}</p>')
    warnings = "".join(f'<p class="warning">warning: {esc(w)}</p>'
                       for w in report.get("warnings") or ())
    return f"<h1>quantgate report</h1>{lede}{warnings}"


def run_details(report: dict[str, Any]) -> str:
    """The manifest, folded: what a reader checks second (which commit, machine, versions)."""
    m = report.get("manifest") or {}
    git = m.get("git") or {}
    machine = m.get("machine") or {}
    packages = ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items() if v)
    data = ", ".join(f"{k} {str(v)[:16]}" for k, v in (m.get("data_sha256") or {}).items())
    commit = f"{str(git.get('commit') or 'unknown')[:12]}{' (dirty)' if git.get('dirty') else ''}"
    created = report.get("created") or "not recorded (report version 1)"
    rows = [("model sha256", str(m.get("model_sha256") or "")[:16]), ("data sha256", data),
            ("commit", commit), ("packages", packages),
            ("machine", f"{machine.get('cpu')} · {machine.get('cores')} cores · "
                        f"flags {', '.join(machine.get('cpu_flags') or []) or 'unknown'}"),
            ("python", f"{m.get('python')} · {m.get('platform')}"),
            ("created", created),
            ("report", f"{report.get('format')} version {report.get('version')}")]
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return (f'<details class="run" id="run"><summary>Run details: commit {esc(commit)} · '
            f'{esc(created)} · {esc(machine.get("cpu") or "machine unknown")}</summary>'
            f'<table class="manifest">{cells}</table></details>')


def _p50(entry: BackendSummary) -> str:
    lat = entry.latency
    timed = [(k, p) for k, s in lat.items() if (p := columns.number(s.get("p50"))) is not None]
    return ", ".join(f"b{k}: {p * 1e3:.2f}" for k, p in timed) or "not timed"


def verdict_table(report: dict[str, Any]) -> str:
    """One row per backend: its name (a link to its section), the quality columns, the verdict
    and the reason, held to two lines (the section below has it whole). The median-latency
    column only when something was timed."""
    snap = RunSnapshot.from_dict(report)
    cols = (columns.NAME, columns.PRECISION, columns.SIZE, columns.BUILD,
            *columns.quality(snap.task))
    timed = any(_p50(e) != "not timed" for e in snap.backends.values())
    rows = []
    for e in snap.backends.values():
        cls = "pass" if e.verdict == "PASS" else "fail"
        name, *cells = [c.cell(e) for c in cols]
        cells += [_p50(e)] if timed else []
        rows.append(f'<tr><td class="name"><a href="#backend-{esc(name)}">{esc(name)}</a></td>'
                    + "".join(f"<td>{esc(c)}</td>" for c in cells)
                    + f'<td class="verdict {cls}">{esc(e.verdict)}</td>'
                    f'<td class="reason"><div class="clamp" title="{esc(e.reason)}">'
                    f"{esc(e.reason)}</div></td></tr>")
    head = (*(c.header for c in cols), *(["p50 ms"] if timed else []), "verdict", "reason")
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
        gaps.append(view_for(report).calibration_gap(report))
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
