"""The terminal summary, drawn from the run snapshot alone: the reference line, the verdict
table, each failing backend's reason and the diagnosis of expected failures."""

from __future__ import annotations

from collections.abc import Sequence

from ..snapshot import RunSnapshot
from .adversarial import adversarial_line
from .columns import number, table_rows, verdict_columns
from .text import safe_text


def render(table: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """Columns padded to their widest cell; the first and last left-aligned, the rest right.
    Cells are user text (backend names, reasons): shown safe (report/text.py)."""
    table = [[safe_text(c) for c in row] for row in table]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 or i == len(r) - 1 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in table)]


def reference_line(snapshot: RunSnapshot) -> str:
    cfg, ref = snapshot.config, snapshot.reference
    timing = ref.timing if ref is not None else {}
    seconds = number(timing.get("predict_seconds")) or 0.0
    how = ("outputs loaded from the cache, not recomputed" if timing.get("reference_cached")
           else "not run" if ref is None
           else f"outputs computed in {seconds:.1f} s and cached" if ref.status == "ok"
           else f"{ref.status}: {ref.status_reason}")
    what = "inputs"
    lm = (ref.lm if ref is not None else None) or {}
    if lm:
        ppl = number(lm.get("ppl"))
        what = (f"documents ({lm.get('tokens')} tokens scored, window {cfg.get('window')}, "
                f"stride {cfg.get('stride')}, perplexity {ppl if ppl is None else f'{ppl:.4g}'})")
    n = cfg.get("n_inputs")
    eval_name = str(cfg.get("eval") or "").replace("\\", "/").rsplit("/", 1)[-1]
    return (f"reference {cfg.get('reference')} on {'?' if n is None else n} {what} of "
            f"{eval_name} ({how}); model {cfg.get('model')}")


def summary_lines(snapshot: RunSnapshot) -> list[str]:
    from .diagnosis import diagnosis

    columns = verdict_columns(snapshot.task)
    lines = [reference_line(snapshot),
             *render(table_rows(snapshot, columns), [c.header for c in columns]),
             "build s: * = loaded from the cache (the figure is the original build); "
             "checks p/f/s = passed/failed/skipped",
             snapshot.summary]
    lines += [safe_text(f"{name}: {e.verdict}: {e.reason}") for name, e in snapshot.backends.items()
              if e.verdict != "PASS" and e.reason]
    lines += [line for line in [adversarial_line(snapshot)] if line]
    lines += [f"warning: {text}" for text in snapshot.warnings]
    lines += [f"run error: {text}" for text in snapshot.errors]
    entries = [snapshot.reference] if snapshot.reference is not None else []
    for entry in [*entries, *snapshot.backends.values()]:  # a damaged cache entry rebuilt, ...
        note = ((entry.info or {}).get("details") or {}).get("cache")
        if note:
            lines.append(f"{entry.name}: note: {note}")
    expected = set(snapshot.config.get("expect_fail") or ())
    for name, entry in snapshot.backends.items():
        # Expected failures show no FAILURES entry, so their diagnosis is told here.
        failed = [r for r in entry.checks if r.verdict == "failed"]
        if name in expected and failed:
            topk = [r for r in failed if r.check in ("topk", "ppl")]
            lines += ["", "(expected) " + diagnosis((topk or failed)[0])]
    return lines
