"""The text-classification task: labelled JSONL texts in memory, logits per text, judged on
logits, top-k and accuracy (gate.py). See tasks/base.py for what a task is to the gate."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_bytes_atomic, write_json_atomic
from ..backends.base import BackendInfo, Runner
from ..backends.registry import BuildContext
from ..errors import BackendUnavailable, ConfigError, DataError, problem
from ..gate import evaluate
from ..progress import phase
from .base import BackendRun, CheckReport, Judged, guarded, head_problem, too_long
from .batching import Batch
from .data import Example, read_examples
from .text_classification import Shapes, predict_logits
from .text_inputs import TextInputs
from .tokenizer import Encoded


class Classification(TextInputs):
    name = "text-classification"

    # -- data --------------------------------------------------------------------------------
    @cached_property
    def examples(self) -> list[Example]:
        return read_examples(self.config.eval, self.session.facts.labels)

    @cached_property
    def encoded(self) -> list[Encoded]:
        return self.session.encoder.encode([e.text for e in self.examples])

    @cached_property
    def labels(self) -> np.ndarray | None:
        """Label ids of the eval set, or None when any text has no label."""
        if any(e.label is None for e in self.examples):
            return None
        return np.array([e.label for e in self.examples], dtype=np.int64)

    @property
    def class_names(self) -> Sequence[str]:
        return self.session.facts.labels

    def n_inputs(self) -> int:
        return len(self.examples)

    def sample_texts(self, limit: int | None = None) -> list[str]:
        return [e.text for e in self.examples[:limit]]

    def config_record(self) -> dict[str, Any]:
        return {}

    def preflight(self) -> list[str]:
        cfg, labels = self.config, self.session.facts.labels
        problems = guarded(lambda: self.examples)
        calibration = cfg.calibration
        if calibration is not None:
            problems += guarded(lambda: read_examples(calibration, labels, require_label=False))
        problems += too_long("max_length", cfg.max_length, self.session.facts.positions)
        problems += head_problem(self.session.facts.architectures, self.name)
        for pattern, table in cfg.thresholds.items():
            k = table.get("topk")
            if k is not None and len(labels) > 1 and int(k) >= len(labels):
                problems.append(problem(
                    f"{cfg.source} [tool.quantgate]: thresholds.{pattern}: topk", k,
                    f"at most {len(labels) - 1} (the model has {len(labels)} labels: a top-{k} "
                    "overlap can never fail)", "lower topk"))
        return problems

    # -- building and running ----------------------------------------------------------------
    def build_context(self) -> BuildContext:
        return self.text_build_context(num_labels=len(self.session.facts.labels))

    def calibration_texts(self) -> list[str]:
        assert self.config.calibration is not None
        return [e.text for e in read_examples(self.config.calibration, self.session.facts.labels,
                                              require_label=False)]

    def run(self, name: str, reference: Path) -> BackendRun:
        """Logits of every eval text, in order (the reference's are saved afterwards)."""
        runner = self.session.runner(name)
        start = time.perf_counter()
        who = "reference" if name == self.config.reference else "backend"
        with phase(f"{who} {name} on the eval set", len(self.encoded)) as tracker:
            logits, shapes = self._logits(runner, self.encoded, self.batch_cache,
                                          tracker.advance)
        seconds = time.perf_counter() - start
        return BackendRun(name, self.config.decl(name).precision, "ok", logits=logits,
                          info=runner.describe(), shapes=shapes, seconds=seconds,
                          infer_seconds=runner.infer_seconds)

    def _logits(self, runner: Runner, items: Sequence[Encoded],
                batch_cache: dict[Shapes, list[Batch]] | None = None,
                on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, Shapes]:
        cfg = self.config
        return predict_logits(runner, items, batch_size=cfg.batch_size, padding=cfg.padding,
                              pad_id=self.session.encoder.pad_id, max_length=cfg.max_length,
                              num_labels=len(self.session.facts.labels), batch_cache=batch_cache,
                              on_batch=on_batch)

    def predict(self, name: str, texts: Sequence[str]) -> np.ndarray:
        runner = self.session.runner(name)
        return self._logits(runner, self.session.encoder.encode(list(texts)))[0]

    # -- the reference's outputs on disk -----------------------------------------------------
    def reference_parts(self) -> dict[str, Any]:
        return {}  # classification keys stay as they were: existing caches stay valid

    def load_reference(self, folder: Path) -> BackendRun | None:
        try:
            meta = json.loads((folder / "run.json").read_text())
            logits = np.load(folder / "logits.npy", allow_pickle=False)
            info = BackendInfo(**{**meta["info"], "cache_hit": True})
            shapes = Shapes(**meta["shapes"])
            run = BackendRun(meta["name"], meta["precision"], "ok", logits=logits, info=info,
                             shapes=shapes, seconds=meta["seconds"],
                             infer_seconds=meta["infer_seconds"], reference_cached=True)
        except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: run it again
            return None
        if logits.shape != (len(self.examples), len(self.session.facts.labels)):
            return None
        return run

    def save_reference(self, folder: Path, run: BackendRun) -> None:
        """Logits first, then run.json (what a reader opens first), each written atomically."""
        if run.logits is None or run.info is None or run.shapes is None:
            return
        buffer = io.BytesIO()
        np.save(buffer, run.logits, allow_pickle=False)
        write_bytes_atomic(folder / "logits.npy", buffer.getvalue())
        write_json_atomic(folder / "run.json", {
            "name": run.name, "precision": run.precision, "info": asdict(run.info),
            "shapes": asdict(run.shapes), "seconds": run.seconds,
            "infer_seconds": run.infer_seconds})

    # -- judging -----------------------------------------------------------------------------
    @cached_property
    def _scale(self) -> float | None:
        ref = self.session.run(self.config.reference)
        if ref.logits is None:
            return None
        logits = ref.logits.astype(np.float64)
        logits = logits[np.isfinite(logits).all(axis=1)]
        return float(logits.std()) if logits.size else None

    def logit_scale(self) -> float | None:
        """The std of every logit of the reference over the eval set: 3.09 on the demo, 2.18 on
        all-MiniLM-L6-v2 and 5.27 on all-mpnet-base-v2 with heads trained on the same data."""
        return self._scale

    def judge(self, name: str, ref: BackendRun, run: BackendRun, expected: bool) -> Judged:
        assert ref.logits is not None and run.logits is not None
        if not np.all(np.isfinite(ref.logits)):
            raise DataError(problem(f"reference {ref.name!r} outputs", "NaN/Inf",
                                    "finite logits", "fix the reference model or pick "
                                    "another reference"))
        records, values = evaluate(
            backend=name, thresholds=self.session.thresholds(name), ref=ref.logits,
            out=run.logits, labels=self.labels, label_names=self.session.facts.labels,
            texts=[e.text for e in self.examples], worst_n=self.config.worst,
            expected_failure=expected)
        return Judged(records, values)

    def summary(self, run: BackendRun) -> dict[str, Any]:
        return {}

    def check_texts(self, backends: Sequence[str], overrides: Mapping[str, float | int],
                    texts: list[str], expect: Sequence[str] | str | None, single: bool
                    ) -> tuple[CheckReport, list[str]]:
        from ..report.diagnosis import diagnosis

        cfg, names = self.config, self.session.facts.labels
        labels = self._expected(expect, len(texts), names) if expect is not None else None
        ref = self.predict(cfg.reference, texts)
        failures: list[str] = []
        if labels is not None:
            for i in np.flatnonzero(ref.argmax(axis=1) != labels):
                failures.append(f"reference {cfg.reference} predicts "
                                f"{names[int(ref[i].argmax())]} for {texts[i]!r}, expected "
                                f"{names[labels[i]]}")
        if "ppl_delta" in overrides:
            failures.append("ppl_delta: missing, not passed: perplexity is measured for task "
                            f"'causal-lm' only; this model's task is {self.name!r}, so remove "
                            "ppl_delta")
        outputs, results = {}, {}
        for name in backends:
            try:
                out = self.predict(name, texts)
            except BackendUnavailable as exc:
                failures.append(f"{name}: not run: {exc}")
                continue
            outputs[name] = out
            res, _ = evaluate(backend=name, thresholds=self.session.thresholds(name, overrides),
                              ref=ref, out=out, labels=labels, label_names=names, texts=texts,
                              worst_n=cfg.worst)
            results[name] = res
            failures += [diagnosis(r) for r in res.values()
                         if r.verdict == "failed" and not (single and r.check == "accuracy"
                                                           and labels is None)]
        return CheckReport(tuple(texts), ref, outputs, results), failures

    @staticmethod
    def _expected(expect: Sequence[str] | str, n: int, names: Sequence[str]) -> np.ndarray:
        wanted = [expect] * n if isinstance(expect, str) else list(expect)
        if len(wanted) != n:
            raise ConfigError(problem("quantgate.check expect", f"{len(wanted)} labels",
                                      f"{n} (one per text)", "pass one label per text"))
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise ConfigError(problem("quantgate.check expect", unknown[0],
                                      f"one of {list(names)}", "use a label of the model's "
                                      "id2label"))
        return np.array([list(names).index(w) for w in wanted], dtype=np.int64)


def classification(task: object, check: str) -> Classification:
    """``task`` as the classification task, for a check that reads labelled texts."""
    if not isinstance(task, Classification):
        raise ConfigError(problem(f"check {check!r}", f"task {getattr(task, 'name', task)!r}",
                                  "task 'text-classification' (it reads labelled texts)",
                                  "register the check for the tasks it supports"))
    return task
