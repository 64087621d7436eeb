"""Checks on texts a test names: the engine behind the ``quantgate`` fixture, usable alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .backends.base import BackendInfo
from .errors import BackendUnavailable, ConfigError, problem
from .gate import evaluate
from .records import CheckResult
from .session import GateSession
from .tasks.text_classification import predict_logits


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
    def labels(self) -> tuple[str, ...]:
        return self.gate.facts.labels

    def predict(self, texts: Sequence[str] | str) -> np.ndarray:
        """Logits, shape (len(texts), num_labels), widened to at least float32."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        cfg = self.gate.config
        logits, _ = predict_logits(self.gate.runner(self.name), self.gate.encoder.encode(texts),
                                   batch_size=cfg.batch_size, padding=cfg.padding,
                                   pad_id=self.gate.encoder.pad_id, max_length=cfg.max_length,
                                   num_labels=len(self.labels))
        return logits

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
            failures.append("ppl_delta: missing, not passed: the perplexity check needs task "
                            "'causal-lm', which this version does not implement; remove ppl_delta")
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
