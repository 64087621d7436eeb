"""Checks on texts a test names: the engine behind the ``quantgate`` fixture, usable alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends.base import BackendInfo
from .errors import BackendUnavailable, ConfigError, problem
from .gate import evaluate
from .records import CheckResult
from .session import GateSession


class QuantgateCheckFailed(AssertionError):
    """A ``quantgate.check`` found a backend outside its thresholds; the text is the diagnosis."""


@dataclass(frozen=True)
class CheckReport:
    """What one ``check`` measured, per backend, for tests that want to assert more."""

    texts: tuple[str, ...]
    reference: np.ndarray
    outputs: Mapping[str, np.ndarray]
    results: Mapping[str, Mapping[str, CheckResult]]


class BackendHandle:
    """One backend, ready to predict texts; what ``quantgate_backend`` hands a test."""

    def __init__(self, gate: GateSession, name: str) -> None:
        self.gate = gate
        self.name = name
        self.precision = gate.config.decl(name).precision

    def __repr__(self) -> str:
        return f"<quantgate backend {self.name} ({self.precision})>"

    @property
    def info(self) -> BackendInfo:
        return self.gate.runner(self.name).describe()

    @property
    def labels(self) -> Sequence[str]:
        """The column names of ``predict``: class labels, or a causal LM's tokens."""
        return self.gate.class_names

    def predict(self, texts: Sequence[str] | str) -> np.ndarray:
        """Logits, shape (len(texts), num_labels), widened to at least float32; for a causal LM
        the next-token logits after each text, shape (len(texts), vocab)."""
        return self.gate.predict(self.name, [texts] if isinstance(texts, str) else list(texts))

    def top_k(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        from .gate import _topk

        return list(_topk(self.predict(text)[0], self.labels, k))


class Checker:
    """Compares backends with the reference on given texts, under per-test thresholds."""

    def __init__(self, gate: GateSession, overrides: Mapping[str, float | int],
                 backends: Sequence[str] | None = None) -> None:
        self.gate = gate
        self.overrides = dict(overrides)
        # Backends declared in expect_fail are known-broken: checked only when named.
        cfg = gate.config
        self.backends = tuple(backends) if backends is not None else tuple(
            b for b in cfg.backends if b not in cfg.expect_fail)

    def handle(self, name: str) -> BackendHandle:
        return BackendHandle(self.gate, name)

    def check(self, texts: Sequence[str] | str, expect: Sequence[str] | str | None = None
              ) -> CheckReport:
        """Every backend stays within the thresholds on ``texts``; ``expect`` names labels."""
        single = isinstance(texts, str)
        items = [texts] if isinstance(texts, str) else list(texts)
        if self.gate.is_lm:
            return self._check_lm(items, expect)
        names = self.gate.facts.labels
        labels = self._labels(expect, len(items), names) if expect is not None else None
        ref = self.handle(self.gate.config.reference).predict(items)
        failures: list[str] = []
        if labels is not None:
            for i in np.flatnonzero(ref.argmax(axis=1) != labels):
                failures.append(f"reference {self.gate.config.reference} predicts "
                                f"{names[int(ref[i].argmax())]} for {items[i]!r}, expected "
                                f"{names[labels[i]]}")
        if "ppl_delta" in self.overrides:
            failures.append("ppl_delta: missing, not passed: perplexity is measured for task "
                            "'causal-lm' only; this model's task is "
                            f"{self.gate.config.task!r}, so remove ppl_delta")
        outputs, results = {}, {}
        for name in self.backends:
            try:
                out = self.handle(name).predict(items)
            except BackendUnavailable as exc:
                failures.append(f"{name}: not run: {exc}")
                continue
            outputs[name] = out
            res, _ = evaluate(backend=name, thresholds=self.gate.thresholds(name, self.overrides),
                              ref=ref, out=out, labels=labels, label_names=names, texts=items,
                              worst_n=self.gate.config.worst)
            results[name] = res
            from .report.diagnosis import diagnosis

            failures += [diagnosis(r) for r in res.values()
                         if r.verdict == "failed" and not (single and r.check == "accuracy"
                                                           and labels is None)]
        if failures:
            raise QuantgateCheckFailed("\n".join(failures))
        return CheckReport(tuple(items), ref, outputs, results)

    def _check_lm(self, texts: list[str], expect: Sequence[str] | str | None) -> CheckReport:
        """Perplexity and next-token agreement of every backend on ``texts`` (each one a
        document), under the test's thresholds: ``ppl`` and ``next-token`` as in the gate."""
        import tempfile
        from pathlib import Path

        from .lm_gate import evaluate_lm
        from .report.diagnosis import diagnosis
        from .tasks.causal_lm import run_pass
        from .tasks.lm_reference import ReferenceReader, ReferenceWriter

        if expect is not None:
            raise ConfigError(problem("quantgate.check expect", expect, "no expect for a causal "
                                      "LM (it has no labels)", "drop expect=; the check "
                                      "compares perplexity and next tokens with the reference"))
        gate, cfg = self.gate, self.gate.config
        k = max([int(gate.thresholds(b, self.overrides)["topk"]) for b in self.backends] or [3])
        source = gate.lm_source(texts=texts)
        kwargs: dict[str, Any] = {"window": cfg.window, "stride": cfg.stride,
                                  "batch_size": cfg.batch_size}
        failures: list[str] = []
        outputs: dict[str, np.ndarray] = {}
        results: dict[str, Mapping[str, CheckResult]] = {}
        with tempfile.TemporaryDirectory(prefix="quantgate-check-") as tmp:
            writer = ReferenceWriter(Path(tmp) / "reference")
            ref = run_pass(gate.runner(cfg.reference), source, k=k, writer=writer,
                           worst_n=0, **kwargs, **gate.static_shapes(cfg.reference))
            writer.finish({"k": k, "tally": ref.to_dict()})
            for name in self.backends:
                reader = ReferenceReader(Path(tmp) / "reference")
                try:
                    out = run_pass(gate.runner(name), source, k=int(gate.thresholds(
                        name, self.overrides)["topk"]), reference=reader, worst_n=cfg.worst,
                                   **kwargs, **gate.static_shapes(name))
                except BackendUnavailable as exc:
                    failures.append(f"{name}: not run: {exc}")
                    continue
                finally:
                    reader.close()
                res, _ = evaluate_lm(backend=name, reference=cfg.reference,
                                     thresholds=gate.thresholds(name, self.overrides), ref=ref,
                                     out=out, token_text=gate.token_text)
                results[name] = res
                outputs[name] = gate.predict(name, texts)  # next-token logits, for the report
                failures += [diagnosis(r) for r in res.values() if r.verdict == "failed"]
        if failures:
            raise QuantgateCheckFailed("\n".join(failures))
        return CheckReport(tuple(texts), gate.predict(cfg.reference, texts), outputs, results)

    def _labels(self, expect: Sequence[str] | str, n: int, names: tuple[str, ...]) -> np.ndarray:
        wanted = [expect] * n if isinstance(expect, str) else list(expect)
        if len(wanted) != n:
            raise ConfigError(problem("quantgate.check expect", f"{len(wanted)} labels",
                                      f"{n} (one per text)", "pass one label per text"))
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise ConfigError(problem("quantgate.check expect", unknown[0],
                                      f"one of {list(names)}", "use a label of the model's "
                                      "id2label"))
        return np.array([names.index(w) for w in wanted], dtype=np.int64)
