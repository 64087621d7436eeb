"""What the JSON report stores for the charts (report version 2): labels, per-backend drift
(histogram, flip matrix, threshold) and the logits of the inspected inputs.

Inputs named in ``inspect`` are looked up in the eval set; a text that is not there is run
through the reference and every backend that ran (one small batch each). Under pytest-xdist
each worker sends its ``InspectData``, and the controller chooses from the merged data.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import drift

if TYPE_CHECKING:
    from .session import GateSession


def drift_entry(gate: GateSession, name: str) -> dict[str, Any] | None:
    """Histogram and flip matrix of one backend, or None when it (or the reference) did not run."""
    ref, run = gate.run(gate.config.reference), gate.run(name)
    if ref.logits is None or run.logits is None:
        return None
    return {"histogram": drift.histogram(drift.row_diff(ref.logits, run.logits)),
            "flips": drift.flip_matrix(ref.logits, run.logits, len(gate.facts.labels))}


@dataclass
class InspectData:
    """What choosing and charting the inspected inputs needs: the eval texts and labels, and
    every backend's logits (reference first). A pytest-xdist worker holds some backends'; the
    controller merges the workers' data and chooses from all of them, as a serial run does."""

    reference: str
    texts: list[str]
    labels: list[str | None]
    named: list[str]  # ``inspect``: texts to chart whatever their drift
    logits: dict[str, np.ndarray] = field(default_factory=dict)  # eval set, per backend
    outside: dict[str, np.ndarray | None] = field(default_factory=dict)  # named, not in eval

    def merged(self, other: InspectData) -> InspectData:
        return InspectData(self.reference, self.texts, self.labels, self.named,
                           {**other.logits, **self.logits}, {**other.outside, **self.outside})

    def to_payload(self) -> dict[str, Any]:
        return {"reference": self.reference, "texts": self.texts, "labels": self.labels,
                "named": self.named, "logits": {n: _pack(a) for n, a in self.logits.items()},
                "outside": {n: None if a is None else _pack(a) for n, a in self.outside.items()}}

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> InspectData:
        return cls(data["reference"], list(data["texts"]), list(data["labels"]),
                   list(data["named"]), {n: _unpack(v) for n, v in data["logits"].items()},
                   {n: None if v is None else _unpack(v) for n, v in data["outside"].items()})


def _pack(array: np.ndarray) -> dict[str, Any]:
    """float32 bytes as base64: a worker's logits reach the controller as JSON text."""
    data = np.ascontiguousarray(array, dtype=np.float32)
    return {"shape": list(data.shape), "b64": base64.b64encode(data.tobytes()).decode("ascii")}


def _unpack(data: dict[str, Any]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(data["b64"]), dtype=np.float32)
    return raw.reshape(data["shape"])


def inspect_data(gate: GateSession) -> InspectData | None:
    """The data of the backends this session judged; None when the reference has no logits
    (a causal LM, or a reference that did not run)."""
    ref = gate.run(gate.config.reference)
    if ref.logits is None:
        return None
    from .tasks.classification import classification

    task = classification(gate.task, "inspect")  # per-input logits: a classifier's
    names = [gate.config.reference, *gate.judged()]
    texts = [e.text for e in task.examples]
    labels = task.labels
    where = set(texts)
    named = list(dict.fromkeys(gate.config.inspect))
    outside = [t for t in named if t not in where]
    return InspectData(
        gate.config.reference, texts,
        [gate.facts.labels[i] for i in labels] if labels is not None else [None] * len(texts),
        named, {n: logits for n in names if (logits := gate.run(n).logits) is not None},
        {n: _run_texts(gate, n, outside) for n in names} if outside else {})


def choose(data: InspectData, failing: list[str], judged: list[str]) -> list[dict[str, Any]]:
    """The named and worst inputs with the logits of the reference and every judged backend
    (None where a backend produced none)."""
    ref = data.logits.get(data.reference)
    if ref is None:
        return []
    names = [data.reference, *judged]
    where = {t: i for i, t in reversed(list(enumerate(data.texts)))}
    outside = [t for t in data.named if t not in where]
    diffs = {n: drift.row_diff(ref, data.logits[n]) for n in judged if n in data.logits}
    picked = drift.pick_inputs(diffs, failing, [where[t] for t in data.named if t in where])
    out: list[dict[str, Any]] = []
    for i, why in picked:
        out.append({"index": i, "text": data.texts[i], "label": data.labels[i], "why": why,
                    "logits": {n: drift.logits_row(data.logits[n][i]) if n in data.logits
                               else None for n in names}})
    for j, text in enumerate(outside):
        out.insert(0, {"index": None, "text": text, "label": None,
                       "why": ["named in inspect (not in the eval set)"],
                       "logits": {n: (drift.logits_row(v[j]) if isinstance(v, np.ndarray)
                                      else None) for n in names
                                  for v in [data.outside.get(n)]}})
    return out


def _run_texts(gate: GateSession, name: str, texts: list[str]) -> np.ndarray | None:
    """Logits of texts outside the eval set; None when the backend cannot run here."""
    if gate.run(name).status != "ok":
        return None
    try:
        return gate.predict(name, texts)
    except Exception:  # the report must still be written; the chart says it was not measured
        return None
