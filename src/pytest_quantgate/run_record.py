"""Taking the run snapshot from a gate session: the one place the engine's state becomes a record.

Every read is guarded. A data error the items already recorded (a malformed eval line, an
unknown label, an unreadable model directory) is met again here when the manifest hashes the
files or the summary counts the inputs; it becomes a line of ``errors`` and the parts that
cannot be known stay empty, so the table and every report are still written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any, TypeVar

from .errors import first_line
from .inspected import InspectData, choose, drift_entry, inspect_data
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
        except Exception as exc:  # noqa: BLE001: recorded, and the rest of the record goes on
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
    backends: dict[str, BackendSummary] = {}
    for name in gate.judged():
        backends[name] = guard(f"backend {name!r}", lambda n=name: _judged(  # type: ignore[misc]
            gate, n), BackendSummary(
                name, status="error", verdict="ERROR", reason="its record could not be taken"))
    failing = [n for n, b in backends.items() if b.verdict != "PASS"]
    data = inspect if inspect is not None else guard("inspected inputs",
                                                     lambda: inspect_data(gate), None)
    return RunSnapshot(
        manifest=guard("manifest", lambda: gate.manifest, {}),
        config=config,
        reference=guard("reference", lambda: _summary(gate, cfg.reference), None)
        if gate.ran(cfg.reference) else None,
        backends=backends,
        labels=tuple(guard("labels", lambda: [str(x) for x in gate.facts.labels], [])),
        inspected=tuple(choose(data, failing, gate.judged()) if data is not None else ()),
        errors=tuple(errors),
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
