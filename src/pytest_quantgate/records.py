"""The one fixed record every check produces; the table, JSON report and items are its views.

Records are frozen and versioned (``SCHEMA``). A record is filled in even when the check could
not run (verdict "error", "skipped" or "missing"), so reports never have holes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = 2  # 2: CheckResult.details (causes, provenance, counts); 1 had none
VERDICTS = ("passed", "failed", "inconclusive", "error", "skipped", "missing")


@dataclass(frozen=True)
class Measure:
    """One measured value against its threshold."""

    name: str
    value: float
    threshold: float | None
    op: str  # "<=" or ">="
    passed: bool
    n: int  # inputs it was measured on
    n_failing: int = 0  # inputs that break it on their own (where that means something)
    interval: tuple[float, float] | None = None  # 95% interval of a rate or mean over n inputs
    # The estimate is on the failing side but its interval reaches the threshold: the sample
    # cannot tell (uncertainty.py); ``decide_at``: about how many inputs would.
    inconclusive: bool = False
    decide_at: int | None = None

    @property
    def would_pass_at(self) -> float:
        """The loosest-needed threshold: the value itself (Polygraphy's 'minimum tolerance')."""
        return self.value


@dataclass(frozen=True)
class Worst:
    """One of the worst inputs: the text, its label, and both sides' top-k."""

    index: int
    text: str
    label: str | None
    score: float  # what made it worst: ``metric`` of the row
    reference: tuple[tuple[str, float], ...]
    backend: tuple[tuple[str, float], ...]
    metric: str = "max|diff|"  # causal LM: "ppl ratio" (backend / reference on the document)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check (``logits``, ``topk``, ``accuracy``...) of one backend."""

    backend: str
    check: str
    verdict: str
    reason: str
    measures: tuple[Measure, ...] = ()
    n_inputs: int = 0
    worst: tuple[Worst, ...] = ()
    expected_failure: bool = False
    # What a check found beyond its measures (plain JSON values): "causes" (one line each, shown
    # as "cause:" in the diagnosis), "notes", counts, the calibration set's provenance...
    details: dict[str, Any] = field(default_factory=dict)
    schema: int = field(default=SCHEMA)

    @property
    def nodeid(self) -> str:
        return f"quantgate::{self.backend}::{self.check}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodeid"] = self.nodeid
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        measures = tuple(_measure(m) for m in data.get("measures", ()))
        worst = tuple(Worst(**{**w, "reference": tuple(map(tuple, w["reference"])),
                               "backend": tuple(map(tuple, w["backend"]))})
                      for w in data.get("worst", ()))
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{"backend": "", "check": "", "verdict": "missing", "reason": "", **fields,
                      "measures": measures, "worst": worst,
                      "details": dict(data.get("details") or {})})


def _measure(data: dict[str, Any]) -> Measure:
    """A stored measure; a report written by hand or by an older version may lack some keys."""
    known = {k: v for k, v in data.items() if k in Measure.__dataclass_fields__}
    interval = known.get("interval")
    return Measure(**{"threshold": None, "op": "<=", "passed": True, "n": 0, **known,
                      "interval": tuple(interval) if interval else None})
