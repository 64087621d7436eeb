"""The verdict table's columns, written once: the terminal table, ``quantgate show`` and the HTML
page all take their headers and cells from here.

A column reads one ``BackendSummary`` of the run snapshot. The quality columns depend on the
task (a causal LM has perplexity where a classifier has logit differences); the snapshot says
which task it holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..snapshot import BackendSummary, RunSnapshot
from ..verdicts import check_counts


def _ref(entry: BackendSummary) -> str:
    return "ref"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[BackendSummary], str]
    reference: Callable[[BackendSummary], str] = _ref  # the reference row's cell


def number(value: object) -> float | None:
    """A finite number, else None (absent, null, NaN or Inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def signed_pct(value: float) -> str:
    """A relative change as a signed percentage; one that rounds to nothing shows as +0.00%."""
    return f"{0.0 if abs(value) < 0.00005 else value:+.2%}"


def metric(key: str, fmt: str, *, change: bool = False) -> Callable[[BackendSummary], str]:
    """A metric's cell: "-" where absent, "NaN/Inf" where not finite. ``change``: deltas are
    stored as reference minus backend (a drop is positive); the cell shows the change."""
    def cell(entry: BackendSummary) -> str:
        value = entry.metrics.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "-"
        if not math.isfinite(value):
            return "NaN/Inf"
        if fmt == "%":
            return signed_pct(value)
        if change:
            value = -value
            value = 0.0 if abs(value) < 0.0005 else value  # no "-0.000"
        return fmt.format(value)

    return cell


def _size(entry: BackendSummary) -> str:
    size = number((entry.info or {}).get("size_bytes"))
    return f"{size / 1e6:.2f}" if size else "-"


def _build(entry: BackendSummary) -> str:
    info = entry.info or {}
    seconds = number(info.get("build_seconds"))
    text = f"{seconds:.1f}" if seconds is not None else "-"
    return text + ("*" if info.get("cache_hit") else "")


def _ref_ppl(entry: BackendSummary) -> str:
    ppl = number((entry.lm or {}).get("ppl"))
    return f"{ppl:.4g}" if ppl is not None else "ref"


def _ref_status(entry: BackendSummary) -> str:
    return "REFERENCE" if entry.status == "ok" else entry.status.upper()


NAME = Column("backend", lambda e: e.name, lambda e: e.name)
PRECISION = Column("prec", lambda e: e.precision, lambda e: e.precision)
SIZE = Column("size MB", _size, _size)
BUILD = Column("build s", _build, _build)
CHECKS = Column("checks p/f/s", lambda e: check_counts(e.checks), lambda e: "")
VERDICT = Column("verdict", lambda e: e.verdict, _ref_status)

CLASSIFICATION = (
    Column("max|Δ|", metric("max_abs_logit", "{:.4f}")),
    Column("mean|Δ|", metric("mean_abs_logit", "{:.4f}")),
    Column("top-1", metric("top1_agreement", "{:.3f}")),
    Column("acc Δ", metric("accuracy_delta", "{:+.3f}", change=True)),
    Column("F1 Δ", metric("f1_delta", "{:+.3f}", change=True)),
)
# causal LM: perplexity and its relative change, next-token agreement over every scored
# position, logit differences at the documents' final positions
CAUSAL_LM = (
    Column("ppl", metric("ppl", "{:.4g}"), _ref_ppl),  # the reference row: its own perplexity
    Column("ppl Δ", metric("ppl_delta", "%")),
    Column("next top-1", metric("top1_agreement", "{:.3f}")),
    Column("top-k", metric("topk_overlap", "{:.3f}")),
    Column("final max|Δ|", metric("max_abs_logit", "{:.4f}")),
)
# embeddings: the lowest and mean cosine to the reference's vectors, the share of each query's
# top-k neighbours kept, and the recall@k change where the queries have relevant texts
EMBEDDINGS = (
    Column("min cos", metric("min_cosine", "{:.4f}")),
    Column("mean cos", metric("min_cosine_mean", "{:.5f}")),
    Column("top-k kept", metric("neighbour_overlap", "{:.3f}")),
    Column("recall Δ", metric("recall_delta", "{:+.3f}", change=True)),
)
QUALITY = {"text-classification": CLASSIFICATION, "causal-lm": CAUSAL_LM,
           "embeddings": EMBEDDINGS}


def quality(task: str) -> tuple[Column, ...]:
    return QUALITY.get(task, CLASSIFICATION)


def verdict_columns(task: str) -> tuple[Column, ...]:
    """The terminal table's and ``quantgate show``'s columns."""
    return (NAME, PRECISION, SIZE, BUILD, *quality(task), CHECKS, VERDICT)


def table_rows(snapshot: RunSnapshot, columns: Sequence[Column], *,
               with_reference: bool = True) -> list[tuple[str, ...]]:
    """One row per backend, the reference first (its quality cells say "ref")."""
    out: list[tuple[str, ...]] = []
    ref = snapshot.reference
    if with_reference and ref is not None:
        out.append(tuple(c.reference(ref) for c in columns))
    out += [tuple(c.cell(e) for c in columns) for e in snapshot.backends.values()]
    return out
