"""The versioned JSON report: a manifest and, per backend, metrics, checks and verdicts."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..cache import write_json_atomic
from ..session import GateSession
from .table import backend_verdict, degraded

FORMAT = "pytest-quantgate-report"
# 2: "created", "labels", "inspected" (logits of named and worst inputs), per-backend "drift"
# (|logit diff| histogram, flip matrix) and "comparison"; readers of 1 ignore the new keys.
VERSION = 2


def build_report(gate: GateSession, comparison: dict[str, Any] | None = None) -> dict[str, Any]:
    import time

    from ..manifest import build_manifest
    from .inspected import drift_entry, inspected_inputs

    cfg = gate.config
    files = {"eval": cfg.eval, **({"calibration": cfg.calibration} if cfg.calibration else {})}
    report: dict[str, Any] = {  # config["task"]: readers tell a causal LM's report apart
        "format": FORMAT, "version": VERSION,
        "manifest": build_manifest(model_dir=cfg.model, data_files=files, extra={
            "tokenizer": gate.encoder.source, "task": cfg.task}),
        "config": {"task": cfg.task, "reference": cfg.reference, "backends": list(cfg.backends),
                   "max_length": cfg.max_length, "padding": cfg.padding,
                   "batch_size": cfg.batch_size, "expect_fail": list(cfg.expect_fail),
                   "n_inputs": gate.n_inputs,
                   **({"window": cfg.window, "stride": cfg.stride} if gate.is_lm else {})},
        "reference": _run(gate, cfg.reference),
        "backends": {},
    }
    report["not_run"] = [n for n in cfg.backends if n not in gate.judged()]
    report["summary"] = degraded(gate)
    for name in gate.judged():
        entry = _run(gate, name)
        word, reason = backend_verdict(gate, name)
        entry.update(
            verdict=word, reason=reason, expected_failure=name in cfg.expect_fail,
            thresholds=gate.thresholds(name), metrics=gate.metrics.get(name, {}),
            checks=[r.to_dict() for r in gate.records(name).values()],
            latency={str(size): s.to_dict() for size, s in gate.latency.get(name, {}).items()},
            drift=drift_entry(gate, name))
        # The generated corpus is its own slice next to the golden set's metrics (issue 3).
        adversarial = gate.records(name).get("adversarial")
        if adversarial is not None and "adversarial" in adversarial.details:
            entry["adversarial"] = {"verdict": adversarial.verdict, "reason": adversarial.reason,
                                    **adversarial.details["adversarial"]}
        report["backends"][name] = entry
    failing = [n for n, e in report["backends"].items() if e["verdict"] != "PASS"]
    report.update(created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  labels=list(gate.facts.labels), inspected=inspected_inputs(gate, failing),
                  comparison=comparison)
    return report


def _run(gate: GateSession, name: str) -> dict[str, Any]:
    run = gate.run(name)
    decl = gate.config.decl(name)
    n = gate.n_inputs
    lm = {}
    if run.lm is not None:  # causal LM: the pass's counts, and tokens per second
        lm = {"lm": {**run.lm.to_dict(), "ppl": run.lm.ppl},
              "tokens_per_second": run.lm.tokens / run.seconds if run.seconds else None}
    return {
        "name": name, "kind": decl.kind, "precision": run.precision, "options": dict(decl.options),
        "status": run.status, "status_reason": run.reason,
        "info": asdict(run.info) if run.info else None,
        "shapes": asdict(run.shapes) if run.shapes else None,
        "timing": {"predict_seconds": run.seconds, "infer_seconds": run.infer_seconds,
                   "items_per_second": n / run.seconds if run.seconds else None,
                   "reference_cached": run.reference_cached},
        **lm,
    }


def write_report(gate: GateSession, path: Path, comparison: dict[str, Any] | None = None) -> Path:
    write_json_atomic(path, build_report(gate, comparison))
    return path
