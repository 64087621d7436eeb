"""The sections of the HTML report, each drawn from the JSON report's plain values.

A section whose data the report does not hold says so in words ("not measured"), never shows
an empty chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..columns import number, signed_pct
from . import charts
from .charts import esc

TOPK = 3
WORST_DOCS = 5  # worst documents shown per backend (the record keeps `worst` of them)


def not_measured(text: str) -> str:
    return f'<p class="not-measured">Not measured: {esc(text)}</p>'


def reference_ppl(report: dict[str, Any]) -> float | None:
    """The reference's perplexity: its own pass, else as a judged backend recorded it."""
    ppl = number(((report.get("reference") or {}).get("lm") or {}).get("ppl"))
    if ppl is None:
        ppl = next((p for e in (report.get("backends") or {}).values()
                    if (p := number((e.get("metrics") or {}).get("reference_ppl"))) is not None),
                   None)
    return ppl


def perplexity(report: dict[str, Any]) -> str:
    """Causal LM: one bar per backend, the reference's perplexity as the dashed line."""
    backends: dict[str, Any] = report.get("backends") or {}
    ref_name = (report.get("config") or {}).get("reference", "")
    ref = reference_ppl(report)
    out = ['<h2 id="perplexity">Perplexity per backend</h2>']
    bars: list[tuple[str, float]] = []
    texts: list[str] = []
    absent: list[str] = []
    for name, e in backends.items():
        v = e.get("metrics") or {}
        ppl = number(v.get("ppl"))
        if ppl is None:
            absent.append(name)
            continue
        delta = number(v.get("ppl_delta"))
        bars.append((name, ppl))
        texts.append(f"{ppl:.4g}" + (f" {signed_pct(delta)}" if delta is not None else ""))
    if not bars:
        return "".join(out) + not_measured("perplexity (no backend has a finite perplexity)")
    line = (f"the dashed line is the reference {ref_name}'s perplexity {ref:.4g}"
            if ref is not None else "the reference's perplexity is not measured")
    out.append(f'<p class="note">Perplexity on the evaluation documents, lower is better; '
               f"{esc(line)}. Beside each bar: perplexity and its change against the "
               "reference.</p>")
    out.append(charts.hbars(bars, label="perplexity per backend", limit=ref, texts=texts)
               .replace('class="chart"', 'class="chart perplexity"'))
    if absent:
        out.append(not_measured(f"perplexity of {', '.join(absent)} (did not run, or NaN/Inf)"))
    return "".join(out)


def lm_summary(name: str, entry: dict[str, Any], ref_name: str) -> str:
    """Causal LM, one backend: reference ppl -> backend ppl, change, tokens, documents, speed."""
    v, lm = entry.get("metrics") or {}, entry.get("lm") or {}
    ppl, ref = number(v.get("ppl")), number(v.get("reference_ppl"))
    if ppl is None:
        why = entry.get("status_reason") or "the backend did not run, or its perplexity is NaN/Inf"
        return not_measured(f"perplexity ({why})")
    delta = number(v.get("ppl_delta"))
    tokens, docs = number(v.get("tokens", lm.get("tokens"))), number(lm.get("docs"))
    speed = number(entry.get("tokens_per_second"))
    parts = [f"perplexity {'not measured' if ref is None else f'{ref:.4g}'} ({ref_name}) -> "
             f"{ppl:.4g} ({name})",
             f"Δ {'not measured' if delta is None else signed_pct(delta)}",
             "tokens not recorded" if tokens is None else f"{tokens:.0f} tokens",
             "documents not recorded" if docs is None else f"{docs:.0f} documents",
             "tokens/s not measured" if speed is None else f"{speed:,.0f} tokens/s"]
    return f'<p class="note lm">{esc(" · ".join(parts))}</p>'


def _tokens(pairs: object) -> str:
    """Top next tokens as ``token 0.35, token 0.14``."""
    if not isinstance(pairs, list):
        return "not recorded"
    return ", ".join(f"{p[0]} {p[1]:.2f}" if isinstance(p, list | tuple) and len(p) == 2
                     and number(p[1]) is not None else str(p) for p in pairs)


def _score(value: object) -> str:
    v = number(value)
    return "-" if v is None else f"{v:.3g}"


def worst_documents(name: str, entry: dict[str, Any], ref_name: str) -> str:
    """Causal LM, one backend: the documents whose perplexity rose most against the reference's
    (the ppl check's worst inputs), each with the next tokens both sides predict after it."""
    checks = entry.get("checks") or []
    record = next((c for c in checks if c.get("check") == "ppl" and c.get("worst")),
                  next((c for c in checks if c.get("check") == "next-token" and c.get("worst")),
                       None))
    if record is None:
        return ""
    worst = record["worst"][:WORST_DOCS]
    metric = str(worst[0].get("metric") or "score")
    rows = "".join(
        f'<tr><td class="doc">{esc(w.get("text", ""))}</td><td>{_score(w.get("score"))}</td>'
        f'<td class="tokens">{esc(_tokens(w.get("reference")))}</td>'
        f'<td class="tokens">{esc(_tokens(w.get("backend")))}</td></tr>' for w in worst)
    return (f'<h4>Worst documents ({esc(metric)}, highest first)</h4>'
            f'<table class="worst"><tr><th>document</th><th>{esc(metric)}</th>'
            f"<th>next tokens: {esc(ref_name)}</th><th>next tokens: {esc(name)}</th></tr>"
            f"{rows}</table>")


def softmax(row: list[float | None]) -> list[float] | None:
    if any(v is None or not math.isfinite(v) for v in row) or not row:
        return None
    vals = [float(v) for v in row if v is not None]
    peak = max(vals)
    exps = [math.exp(v - peak) for v in vals]
    total = sum(exps)
    return [e / total for e in exps]


def _named(why: list[str]) -> bool:
    return any(str(w).startswith("named in inspect") for w in why)


def inspected(report: dict[str, Any]) -> str:
    """Per input: top-k softmax per backend side by side, and all logits on one chart."""
    items = report.get("inspected")
    if items is None:
        return ("<h2>Inputs</h2>" + not_measured(
            f"per-input logits (this report is version {report.get('version')}; version 2 "
            "stores them)"))
    if not items:
        return "<h2>Inputs</h2>" + not_measured("no backend produced logits")
    labels = [str(x) for x in report.get("labels") or []]
    parts = ['<h2 id="inputs">Inputs: named and worst</h2>',
             '<p class="note">Inputs named in <code>inspect</code> and each backend\'s worst '
             "inputs by max |logit diff| (click one to unfold it). Softmax top-3 per backend "
             "side by side, then every label's raw logit, the reference in black.</p>"]
    named = any(_named(item.get("why") or []) for item in items)
    for n, item in enumerate(items):
        logits: dict[str, Any] = item.get("logits") or {}
        names = list(logits)
        label = f" · label {esc(item['label'])}" if item.get("label") is not None else ""
        why = item.get("why") or []
        # open: the inputs the user named (or the first, when none is named); the rest fold
        is_open = _named(why) or (n == 0 and not named)
        parts.append(f'<details class="input" id="input-{n}"{" open" if is_open else ""}>'
                     f'<summary><span class="input-text">{esc(item.get("text", ""))}</span>'
                     f'<span class="why">{esc("; ".join(why))}{label}</span></summary>')
        panels = []
        for name in names:
            row = logits[name]
            probs = softmax(row) if row is not None else None
            head = f'<div class="panel"><div class="panel-title">{esc(name)}</div>'
            if row is None:
                panels.append(head + not_measured("this backend did not run") + "</div>")
            elif probs is None:
                panels.append(head + '<p class="bad">NaN/Inf logits</p></div>')
            else:
                top = sorted(range(len(probs)), key=lambda j: -probs[j])[:TOPK]
                bars = [(labels[j] if j < len(labels) else str(j), probs[j]) for j in top]
                panels.append(head + charts.hbars(bars, label=f"softmax top-{TOPK} of {name}",
                                                  width=260, left=80).replace('class="chart"',
                                                                     'class="chart softmax"')
                              + "</div>")
        parts.append('<div class="panels">' + "".join(panels) + "</div>")
        series = [(name, list(logits[name] or [None] * len(labels))) for name in names]
        parts.append(charts.grouped_bars(labels, series, label=f"raw logits of input {n}",
                                         value_label="logit").replace('class="chart"',
                                                                      'class="chart logits"'))
        parts.append(legend(names) + "</details>")
    return "".join(parts)


def legend(names: list[str]) -> str:
    keys = [f'<span class="key"><i style="background:'
            f'{charts.REFERENCE_COLOR if i == 0 else charts.color(i - 1)}"></i>{esc(n)}</span>'
            for i, n in enumerate(names)]
    return '<div class="legend">' + "".join(keys) + "</div>"


def drift_detail(name: str, entry: dict[str, Any], labels: list[str]) -> str:
    """Classification, one backend: |logit diff| histogram and flip matrix."""
    drift = entry.get("drift")
    if drift is None:
        why = (entry.get("status_reason") or "the backend did not run" if "drift" in entry
               else "drift data (report version 1)")
        return not_measured(str(why))
    out: list[str] = []
    hist = drift["histogram"]
    limit = (entry.get("thresholds") or {}).get("max_abs_logit")
    out.append('<div class="row">' + charts.histogram(
        hist["counts"], hist["log10_min"], hist["log10_step"], limit,
        label=f"|logit diff| distribution of {name}", nonfinite=hist.get("nonfinite", 0))
        .replace('class="chart"', 'class="chart hist"'))
    out.append(charts.heatmap(drift["flips"], labels, label=f"flip matrix of {name}")
               .replace('class="chart"', 'class="chart flips"') + "</div>")
    flips = sum(c for i, r in enumerate(drift["flips"]) for j, c in enumerate(r) if i != j)
    out.append(f'<p class="note">{flips} inputs change their top-1 label.</p>')
    return "".join(out)


def backend(name: str, entry: dict[str, Any], detail: str) -> str:
    """One backend, folded under its name, verdict and reason (``<details>``: no script); open
    when the verdict is not PASS. Inside: the task's detail (``views.py``: drift charts, or a
    perplexity summary and the worst documents), every check, calibration clipping."""
    verdict = str(entry.get("verdict", ""))
    cls = "pass" if verdict == "PASS" else "fail"
    reason = entry.get("reason") or ""
    out = [f'<details class="backend" id="backend-{esc(name)}"{"" if cls == "pass" else " open"}>'
           f'<summary><span class="name">{esc(name)}</span> '
           f'<span class="verdict {cls}">{esc(verdict)}</span>'
           + (f'<span class="reason clamp">{esc(reason)}</span>' if reason else "")
           + "</summary>", detail]
    checks = entry.get("checks") or []
    rows = "".join(f"<tr><td>{esc(c.get('check'))}</td><td class=\"v-{esc(c.get('verdict'))}\">"
                   f"{esc(c.get('verdict'))}</td><td>{esc(c.get('reason'))}</td></tr>"
                   for c in checks)
    out.append(f'<table class="checks"><tr><th>check</th><th>verdict</th><th>reason</th></tr>'
               f"{rows}</table>")
    calib = next((c for c in checks if c.get("check") == "calibration"), None)
    tensors = ((calib or {}).get("details") or {}).get("worst_tensors")
    if tensors:
        limit = next((m.get("threshold") for m in calib.get("measures", ())  # type: ignore[union-attr]
                      if m.get("name") == "max_clipping_rate"), None)
        out.append("<h4>Calibration: clipping rate per tensor (worst tensors, golden set)</h4>")
        out.append(charts.hbars(sorted(tensors.items(), key=lambda kv: -kv[1]), width=760,
                                label=f"calibration clipping of {name}", limit=limit)
                   .replace('class="chart"', 'class="chart clipping"'))
    return "".join(out) + "</details>"


def tradeoffs(report: dict[str, Any], y_label: str,
              quality: Callable[[dict[str, Any]], float | None]) -> str:
    """Size and latency against the task's quality measure (``views.py``), one point per
    backend."""
    backends: dict[str, Any] = report.get("backends") or {}
    out = ['<h2 id="tradeoffs">Size and latency against quality</h2>']
    sized = [(n, e["info"]["size_bytes"] / 1e6, y) for n, e in backends.items()
             if (e.get("info") or {}).get("size_bytes") and (y := quality(e)) is not None]
    out.append(charts.scatter(sized, x_label="size on disk (MB)", y_label=y_label,
                              label="size against quality").replace(
                                  'class="chart"', 'class="chart scatter"')
               if sized else not_measured("no backend recorded its size"))
    timed = []
    for n, e in backends.items():
        lat = e.get("latency") or {}
        if lat and (y := quality(e)) is not None:
            size = max(lat, key=int)
            p50 = number((lat[size] or {}).get("p50"))
            if p50 is not None:  # None: not timed (under pytest-xdist, --benchmark-disable)
                timed.append((f"{n} (b{size})", p50 * 1e3, y))
    out.append(charts.scatter(timed, x_label="median latency (ms, largest batch)",
                              y_label=y_label, label="latency against quality",
                              log_x=True).replace('class="chart"', 'class="chart scatter"')
               if timed else not_measured("latency was not timed in this run (set latency = true "
                                          "or pass --quantgate-latency)"))
    return "".join(out)


def comparison(report: dict[str, Any]) -> str:
    cmp = report.get("comparison")
    out = ['<h2 id="comparison">Baseline against now</h2>']
    if not cmp:
        return "".join(out) + not_measured("no baseline was compared in this run "
                                           "(--quantgate-compare BASELINE)")
    out.append(f'<p class="note">baseline: {esc(cmp.get("baseline"))}</p>')
    rows = "".join(
        f"<tr class=\"{'regressed' if d.get('regressed') else ''}\"><td>{esc(d.get('backend'))}"
        f"</td><td>{esc(d.get('check'))}</td><td>{esc(d.get('name'))}</td>"
        f"<td>{float(d.get('baseline', 0)):.4g}</td><td>{float(d.get('now', 0)):.4g}</td>"
        f"<td>{'REGRESSED' if d.get('regressed') else 'ok'}</td><td>{esc(d.get('note', ''))}</td></tr>"
        for d in cmp.get("deltas") or [])
    out.append('<table class="comparison"><tr><th>backend</th><th>check</th><th>measure</th>'
               f"<th>baseline</th><th>now</th><th></th><th>note</th></tr>{rows}</table>")
    return "".join(out)
