"""The run record: one frozen, versioned snapshot of a whole gate run.

The engine builds it once at the end of a run (``run_record.take_snapshot``); the terminal table,
the JSON report (``to_dict``), the HTML page, ``quantgate show`` and the baseline are views of it,
and none of them re-reads data or runs a model. Under pytest-xdist each worker sends the
snapshot of the backends it judged and the controller ``merge``\\ s them into the one a serial
run would have built. ``from_dict`` reads any stored report back (versions 1 to 3).

Pure: no pytest, no numpy, no engine; the records in it are plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .records import CheckResult
from .verdicts import backend_verdict, summary_line

FORMAT = "pytest-quantgate-report"
# 3: the run snapshot: per-backend "regressed" checks, run-level "errors" (later "warnings",
# read as none where absent); readers of 2 ignore the new keys. 2: "created", "labels",
# "inspected", per-backend "drift" and "comparison".
VERSION = 3


@dataclass(frozen=True)
class BackendSummary:
    """Everything one backend's run produced: how it ran, its records, its verdict."""

    name: str
    kind: str = ""
    precision: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # "ok" | "unavailable" | "error"
    status_reason: str = ""
    info: dict[str, Any] | None = None  # BackendInfo: size, build time, op counts
    shapes: dict[str, Any] | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    lm: dict[str, Any] | None = None  # causal LM: the streaming pass's counts and ppl
    tokens_per_second: float | None = None
    # Judged backends only (the reference has none of these):
    verdict: str = ""
    reason: str = ""
    expected_failure: bool = False
    thresholds: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # batch size -> stats
    drift: dict[str, Any] | None = None  # |logit diff| histogram, flip matrix
    adversarial: dict[str, Any] | None = None  # the generated corpus as its own slice
    regressed: tuple[str, ...] = ()  # checks worse than the --quantgate-compare baseline

    @property
    def records(self) -> dict[str, CheckResult]:
        return {r.check: r for r in self.checks}

    def judged(self) -> BackendSummary:
        """The same summary with its verdict and reason computed from its records."""
        word, reason = backend_verdict(self.checks, self.expected_failure)
        if self.regressed and word == "PASS":
            word = "REGRESSED"
            reason = "; ".join(filter(None, [f"worse than the baseline: "
                                             f"{', '.join(self.regressed)}", reason]))
        return replace(self, verdict=word, reason=reason)

    def to_dict(self, *, judged: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "precision": self.precision,
            "options": dict(self.options), "status": self.status,
            "status_reason": self.status_reason, "info": self.info, "shapes": self.shapes,
            "timing": dict(self.timing)}
        if self.lm is not None:
            data.update(lm=self.lm, tokens_per_second=self.tokens_per_second)
        if judged:
            data.update(verdict=self.verdict, reason=self.reason,
                        expected_failure=self.expected_failure, thresholds=dict(self.thresholds),
                        metrics=dict(self.metrics), checks=[r.to_dict() for r in self.checks],
                        latency={k: dict(v) for k, v in self.latency.items()}, drift=self.drift,
                        regressed=list(self.regressed))
            if self.adversarial is not None:
                data["adversarial"] = self.adversarial
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackendSummary:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        checks = tuple(CheckResult.from_dict({"backend": values.get("name", ""), **c})
                       for c in data.get("checks") or ()
                       if isinstance(c, Mapping))
        return cls(**{**values, "name": str(data.get("name", "")), "checks": checks,
                      "options": dict(data.get("options") or {}),
                      "timing": dict(data.get("timing") or {}),
                      "thresholds": dict(data.get("thresholds") or {}),
                      "metrics": dict(data.get("metrics") or {}),
                      "latency": {str(k): dict(v) for k, v in (data.get("latency") or {}).items()},
                      "regressed": tuple(data.get("regressed") or ())})


@dataclass(frozen=True)
class RunSnapshot:
    """The whole run: manifest, configuration subset, reference and one summary per backend."""

    manifest: dict[str, Any]
    config: dict[str, Any]  # task, reference, backends, shapes... (what a reader needs)
    reference: BackendSummary | None
    backends: dict[str, BackendSummary]  # judged backends, in configured order
    labels: tuple[str, ...] = ()
    inspected: tuple[dict[str, Any], ...] = ()  # named and worst inputs, every backend's logits
    comparison: dict[str, Any] | None = None  # against --quantgate-compare's baseline
    errors: tuple[str, ...] = ()  # run-level faults met while the snapshot was taken
    # Run-level doubts about what the numbers mean (a reference at chance accuracy); a report
    # written before they existed reads as having none.
    warnings: tuple[str, ...] = ()
    created: str = ""
    version: int = VERSION

    @property
    def task(self) -> str:
        return str(self.config.get("task") or "text-classification")

    @property
    def not_run(self) -> list[str]:
        return [str(n) for n in self.config.get("backends") or () if n not in self.backends]

    @property
    def summary(self) -> str:
        return summary_line([b.verdict for b in self.backends.values()])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": self.version, "manifest": self.manifest,
            "config": dict(self.config),
            "reference": self.reference.to_dict(judged=False) if self.reference else None,
            "backends": {n: b.to_dict() for n, b in self.backends.items()},
            "not_run": self.not_run, "summary": self.summary, "created": self.created,
            "labels": list(self.labels), "inspected": list(self.inspected),
            "comparison": self.comparison, "errors": list(self.errors),
            "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSnapshot:
        ref = data.get("reference")
        return cls(
            manifest=dict(data.get("manifest") or {}), config=dict(data.get("config") or {}),
            reference=BackendSummary.from_dict(ref) if isinstance(ref, Mapping) else None,
            backends={str(n): BackendSummary.from_dict({"name": n, **e})
                      for n, e in (data.get("backends") or {}).items() if isinstance(e, Mapping)},
            labels=tuple(str(x) for x in data.get("labels") or ()),
            inspected=tuple(data.get("inspected") or ()), comparison=data.get("comparison"),
            errors=tuple(data.get("errors") or ()),
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
            created=str(data.get("created") or ""),
            version=int(data.get("version") or 1))

    def with_comparison(self, comparison: dict[str, Any] | None,
                        regressed: Mapping[str, Iterable[str]]) -> RunSnapshot:
        """The snapshot judged against a baseline: a backend with a regressed check (and no
        worse verdict) reads REGRESSED in every view."""
        backends = {n: replace(b, regressed=tuple(dict.fromkeys([*b.regressed,
                                                                *regressed.get(n, ())]))).judged()
                    for n, b in self.backends.items()}
        return replace(self, backends=backends, comparison=comparison)


def merge(parts: Sequence[RunSnapshot]) -> RunSnapshot:
    """One snapshot from the snapshots of several workers of one run (pytest-xdist).

    Each worker judged some backends (or some checks of one); a backend's records are the union
    of its workers' records, and its verdict is computed again from that union, so the merged
    snapshot is the one a serial run builds.
    """
    if not parts:
        raise ValueError("merge: got no snapshots, expected at least one")
    ran = [p for p in parts if p.reference is not None and p.reference.status == "ok"]
    # The worker whose pass computed the reference tells it as a serial run would ("computed in
    # ... s"); the others loaded what it cached in the same run.
    ran.sort(key=lambda p: bool(p.reference is not None
                                and p.reference.timing.get("reference_cached")))
    first = (ran or list(parts))[0]
    order = [str(n) for n in first.config.get("backends") or ()]
    names = [*order, *(n for p in parts for n in p.backends if n not in order)]
    backends: dict[str, BackendSummary] = {}
    for name in dict.fromkeys(names):
        found = [p.backends[name] for p in parts if name in p.backends]
        if found:
            backends[name] = _merge_backend(found)
    return replace(first, backends=backends, inspected=_merge_inspected(p.inspected for p in parts),
                   errors=tuple(dict.fromkeys(e for p in parts for e in p.errors)),
                   warnings=tuple(dict.fromkeys(w for p in parts for w in p.warnings)),
                   labels=first.labels or next((p.labels for p in parts if p.labels), ()))


def _merge_backend(found: Sequence[BackendSummary]) -> BackendSummary:
    base = found[0]
    checks: dict[str, CheckResult] = {}
    metrics: dict[str, float] = {}
    latency: dict[str, dict[str, Any]] = {}
    for summary in found:
        for record in summary.checks:
            kept = checks.get(record.check)
            if kept is None or kept.verdict == "missing":
                checks[record.check] = record
        metrics.update({k: v for k, v in summary.metrics.items() if k not in metrics})
        latency.update({k: v for k, v in summary.latency.items() if k not in latency})
    return replace(base, checks=tuple(checks.values()), metrics=metrics, latency=latency,
                   drift=next((s.drift for s in found if s.drift is not None), None),
                   adversarial=next((s.adversarial for s in found if s.adversarial), None),
                   regressed=tuple(dict.fromkeys(c for s in found for c in s.regressed))
                   ).judged()


def _merge_inspected(groups: Iterable[Sequence[dict[str, Any]]]) -> tuple[dict[str, Any], ...]:
    """The inspected inputs of every worker, one entry per input with every backend's logits."""
    out: dict[tuple[Any, str], dict[str, Any]] = {}
    for group in groups:
        for entry in group:
            key = (entry.get("index"), str(entry.get("text")))
            if key not in out:
                out[key] = {**entry, "why": list(entry.get("why") or ()),
                            "logits": dict(entry.get("logits") or {})}
                continue
            kept = out[key]
            kept["why"] = list(dict.fromkeys([*kept["why"], *(entry.get("why") or ())]))
            for name, row in (entry.get("logits") or {}).items():
                if kept["logits"].get(name) is None:
                    kept["logits"][name] = row
    return tuple(out.values())
