"""What of the page differs by task, one ``TaskView`` per task name: the reference line, the
data section (inputs and their logits, or perplexity bars), each backend's detail (drift, or
a perplexity summary with the worst documents), the quality axis of the trade-off charts, why
calibration clipping is absent, and the gaps it always has.

The page asks ``view_for(report)`` and never which task it draws. A view renders the report's
plain values, so it imports nothing from the engine (a task's own module cannot be asked);
a task without a view here is drawn with the classification view's generic parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..columns import number
from . import charts, sections

Report = dict[str, Any]


@dataclass(frozen=True)
class TaskView:
    reference_line: Callable[[Report], str]
    data_section: Callable[[Report], str]
    backend_detail: Callable[[str, Report, Report], str]  # (name, entry, report) -> html
    quality_label: str  # the trade-off charts' y axis
    quality: Callable[[Report], float | None]  # of a backend's entry
    calibration_gap: Callable[[Report], str]  # why calibration clipping is not charted
    gaps: tuple[str, ...] = ()  # "not measured" lines every report of the task has


def _classification_reference(report: Report) -> str:
    cfg = report.get("config") or {}
    return f"{cfg.get('reference')} on {cfg.get('n_inputs')} inputs"


def _lm_reference(report: Report) -> str:
    """Causal LM: "REF on N documents (T tokens, perplexity P)"."""
    cfg = report.get("config") or {}
    lm = (report.get("reference") or {}).get("lm") or {}
    docs, tokens = number(lm.get("docs")), number(lm.get("tokens"))
    ppl = sections.reference_ppl(report)
    return (f"{cfg.get('reference')} on {cfg.get('n_inputs') if docs is None else f'{docs:.0f}'} "
            f"documents ({'tokens not recorded' if tokens is None else f'{tokens:.0f} tokens'}, "
            f"perplexity {'not measured' if ppl is None else f'{ppl:.4g}'})")


def _classification_calibration(report: Report) -> str:
    static = [n for n, e in (report.get("backends") or {}).items()
              if str(e.get("kind") or "").startswith("onnx-int8-static")]
    if static:  # they could not build without a calibration set: the check was left out
        return (f"calibration clipping (the calibration check of {', '.join(static)} did not "
                "run in this selection)")
    return "calibration clipping (no static-INT8 backend with a calibration set)"


def _lm_calibration(report: Report) -> str:
    return ("calibration clipping (the calibration check is for text classification only so "
            "far: a causal LM's static-INT8 backends are calibrated, their clipping not measured)")


def _drift(name: str, entry: Report, report: Report) -> str:
    return sections.drift_detail(name, entry, [str(x) for x in report.get("labels") or []])


def _lm_summary(name: str, entry: Report, report: Report) -> str:
    ref = str((report.get("config") or {}).get("reference", ""))
    return sections.lm_summary(name, entry, ref) + sections.worst_documents(name, entry, ref)


def _ppl_change(entry: Report) -> float | None:
    delta = number((entry.get("metrics") or {}).get("ppl_delta"))
    return None if delta is None else delta * 100


def _embedding_reference(report: Report) -> str:
    """Embeddings: "REF on N texts (corpus C; queries; pooling)"."""
    cfg = report.get("config") or {}
    return (f"{cfg.get('reference')} on {cfg.get('n_inputs')} texts (corpus "
            f"{cfg.get('corpus', 'not recorded')}; queries: {cfg.get('queries', 'not recorded')}; "
            f"{cfg.get('pooling', 'pooling not recorded')})")


def _embedding_data(report: Report) -> str:
    return sections.not_measured("per-input vectors (an embedder's vectors are charted per "
                                 "backend: distance to the reference's, neighbours kept)")


def _record(entry: Report, check: str) -> Report:
    checks = entry.get("checks") or []
    found = [c for c in checks if isinstance(c, dict) and c.get("check") == check]
    return found[0] if found else {}


def _embedding_detail(name: str, entry: Report, report: Report) -> str:
    """Two charts from the records' details: inputs by decade of 1 - cosine to the reference's
    vector, and queries by how many of their top-k neighbours the backend kept."""
    parts: list[str] = []
    hist = (_record(entry, "embedding").get("details") or {}).get("distance_histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    total = sum(c for c in counts if isinstance(c, int))
    if total and len(edges) == len(counts) + 1:
        items = [(f"1-cos ≤ {edges[i + 1]:g}" if i else f"1-cos ≤ {edges[1]:g}", c / total)
                 for i, c in enumerate(counts)]
        parts.append("<h4>distance to the reference's vectors (share of inputs)</h4>"
                     + charts.hbars(items, label=f"{name}: 1 - cosine by decade"))
    else:
        parts.append(sections.not_measured("distance histogram (the embedding check did not "
                                           "record one)"))
    retrieval = _record(entry, "retrieval").get("details") or {}
    kept = retrieval.get("overlap_counts") or {}
    n = sum(v for v in kept.values() if isinstance(v, int))
    if n:
        items = [(f"{k} kept", v / n) for k, v in reversed(list(kept.items()))]
        parts.append(f"<h4>top-{retrieval.get('k')} neighbours kept per query (share of "
                     f"{n} queries: {charts.esc(retrieval.get('queries', ''))})</h4>"
                     + charts.hbars(items, label=f"{name}: neighbour overlap"))
    else:
        parts.append(sections.not_measured("neighbour overlap (the retrieval check did not "
                                           "record it)"))
    return "".join(parts)


def _embedding_calibration(report: Report) -> str:
    return ("calibration clipping (the calibration check is for text classification and causal "
            "LMs so far: an embedder's static-INT8 backends are calibrated, their clipping not "
            "measured)")


CLASSIFICATION = TaskView(
    _classification_reference, sections.inspected, _drift, "top-1 agreement",
    lambda e: number((e.get("metrics") or {}).get("top1_agreement")),
    _classification_calibration)
CAUSAL_LM = TaskView(
    _lm_reference, sections.perplexity, _lm_summary, "perplexity change (%, lower is better)",
    _ppl_change, _lm_calibration,
    gaps=("per-input logits, |logit diff| histograms and flip matrices (a causal LM has no "
          "classes: next-token agreement is in the verdict table)",))
EMBEDDINGS = TaskView(
    _embedding_reference, _embedding_data, _embedding_detail,
    "mean cosine to the reference", lambda e: number((e.get("metrics") or {}).get(
        "min_cosine_mean")), _embedding_calibration,
    gaps=("per-input logits and flip matrices (an embedder has vectors, not classes: the "
          "distance and neighbour charts stand for them)",))
VIEWS = {"text-classification": CLASSIFICATION, "causal-lm": CAUSAL_LM,
         "embeddings": EMBEDDINGS}


def view_for(report: Report) -> TaskView:
    return VIEWS.get(str((report.get("config") or {}).get("task") or "text-classification"),
                     CLASSIFICATION)
