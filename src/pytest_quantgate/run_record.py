"""Taking the run snapshot from a gate session: the one place the engine's state becomes a record.

Every read is guarded. A data error the items already recorded (a malformed eval line, an
unknown label, an unreadable model directory) is met again here when the manifest hashes the
files or the summary counts the inputs; it becomes a line of ``errors`` and the parts that
cannot be known stay empty, so the table and every report are still written.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, replace
from typing import Any, TypeVar

from .errors import first_line
from .inspected import InspectData, choose, drift_entry, inspect_data
from .metrics import wilson_interval
from .session import GateSession
from .snapshot import BackendSummary, RunSnapshot

T = TypeVar("T")


def take_snapshot(gate: GateSession, inspect: InspectData | None = None) -> RunSnapshot:
    """The snapshot of what ``gate`` judged so far (a worker's share under pytest-xdist).

    ``inspect``: the inspected-input data when the caller has it already (a pytest-xdist worker
    sends it beside the snapshot); gathering it runs the texts named in ``inspect`` that are not
    in the eval set through every backend, so it is done once."""
    cfg = gate.config
    errors: list[str] = []

    def guard(what: str, read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except Exception as exc:  # noqa: BLE001 - recorded, and the rest of the record goes on
            errors.append(f"{what}: {first_line(exc)}")
            return default

    config: dict[str, Any] = {
        "task": cfg.task, "reference": cfg.reference, "backends": list(cfg.backends),
        "max_length": cfg.max_length, "padding": cfg.padding, "batch_size": cfg.batch_size,
        "expect_fail": list(cfg.expect_fail), "eval": str(cfg.eval), "model": str(cfg.model),
        # Only what ran: a session that judged nothing (a worker that got no gate item, a -k
        # that selected none) must not start the reference's pass just to describe it.
        "n_inputs": guard("counting the eval inputs", lambda: gate.task.n_inputs(), None)
        if gate.ran(cfg.reference) else None,
        **guard("the task's configuration", lambda: gate.task.config_record(), {})}
    if cfg.inferred_precision:  # user ONNX files whose precision the graph told (config.py)
        config["precision_inferred"] = {n: p.to_dict() for n, p in cfg.inferred_precision.items()}
    backends: dict[str, BackendSummary] = {}
    for name in gate.judged():
        backends[name] = guard(f"backend {name!r}", lambda n=name: _judged(  # type: ignore[misc]
            gate, n), BackendSummary(
                name, status="error", verdict="ERROR", reason="its record could not be taken"))
    failing = [n for n, b in backends.items() if b.verdict != "PASS"]
    no_labels: list[str] = []
    labels = tuple(guard("labels", lambda: [str(x) for x in gate.facts.labels], no_labels))
    warning = guard("the reference's accuracy", lambda: reference_warning(
        cfg.reference, [b.metrics for b in backends.values()], len(labels)), None)
    data = inspect if inspect is not None else guard("inspected inputs",
                                                     lambda: inspect_data(gate), None)
    return RunSnapshot(
        manifest=guard("manifest", lambda: gate.manifest, {}),
        config=config,
        reference=guard("reference", lambda: _summary(gate, cfg.reference), None)
        if gate.ran(cfg.reference) else None,
        backends=backends,
        labels=labels,
        inspected=tuple(choose(data, failing, gate.judged()) if data is not None else ()),
        errors=tuple(errors), warnings=(warning,) if warning else (),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def _summary(gate: GateSession, name: str) -> BackendSummary:
    run = gate.run(name)
    decl = gate.config.decl(name)
    n = gate.task.n_inputs() if run.status == "ok" else None
    info = asdict(run.info) if run.info else None
    if info is not None and run.extra:  # e.g. "reference outputs not cached: ...": told too
        info["details"] = {**(info.get("details") or {}), **run.extra}
    return BackendSummary(
        name=name, kind=decl.kind, precision=run.precision, options=dict(decl.options),
        status=run.status, status_reason=run.reason,
        info=info,
        shapes=asdict(run.shapes) if run.shapes else None,
        timing={"predict_seconds": run.seconds, "infer_seconds": run.infer_seconds,
                "items_per_second": n / run.seconds if n and run.seconds else None,
                "reference_cached": run.reference_cached},
        **gate.task.summary(run))  # a causal LM's counts, and tokens per second


def _judged(gate: GateSession, name: str) -> BackendSummary:
    records = gate.records(name)
    adversarial = records.get("adversarial")
    slice_ = None
    if adversarial is not None and "adversarial" in adversarial.details:
        slice_ = {"verdict": adversarial.verdict, "reason": adversarial.reason,
                  **adversarial.details["adversarial"]}
    return replace(
        _summary(gate, name), expected_failure=name in gate.config.expect_fail,
        thresholds=dict(gate.thresholds(name)), metrics=dict(gate.metrics.get(name, {})),
        checks=tuple(records.values()),
        latency={str(size): s.to_dict() for size, s in gate.latency.get(name, {}).items()},
        drift=drift_entry(gate, name), adversarial=slice_).judged()


def reference_warning(reference: str, metrics: Iterable[Mapping[str, float]],
                      num_labels: int) -> str | None:
    """The line that says the reference is at chance on the eval set, or None.

    Every judged backend's metrics carry the same reference's accuracy, on that backend's finite
    rows: the backend with the most finite rows speaks for it (with none, labels are absent)."""
    best: tuple[int, float] | None = None
    for values in metrics:
        if math.isfinite(values.get("reference_accuracy", math.nan)):
            n = int(values.get("n_inputs", 0) - values.get("nonfinite_rows", 0))
            if best is None or n > best[0]:
                best = (n, float(values["reference_accuracy"]))
    if best is None:
        return None
    return chance_line(reference, best[1], best[0], num_labels)


def chance_line(reference: str, accuracy: float, n: int, num_labels: int) -> str | None:
    """A line when ``accuracy`` on ``n`` labelled inputs is not clearly above chance
    (1/``num_labels``): its 95% Wilson interval reaches chance, or it is at most 1.5 times it
    (at most 0.1 above it: a binary classifier at 0.7 is poor, not at chance).

    Such a reference (an untrained head, eval labels that do not match its id2label) makes every
    agreement check measure noise, and a backend "passes" by agreeing with it."""
    if num_labels < 2 or n < 1:
        return None
    chance = 1.0 / num_labels
    low, high = wilson_interval(round(accuracy * n), n)
    if low > chance and accuracy > min(1.5 * chance, chance + 0.1):
        return None
    where = "below" if high < chance else "at"
    return (f"reference {reference!r} accuracy {accuracy:.3f} on {n} inputs is {where} chance "
            f"(1 of {num_labels} labels = {chance:.3f}): its head is untrained or the eval labels "
            "do not match its id2label; agreement with it measures noise")
