"""Checks on texts a test names: the engine behind the ``quantgate`` fixture, usable alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .backends.base import BackendInfo
from .session import GateSession
from .tasks.base import CheckReport

__all__ = ["BackendHandle", "CheckReport", "Checker", "QuantgateCheckFailed"]


class QuantgateCheckFailed(AssertionError):
    """A ``quantgate.check`` found a backend outside its thresholds; the text is the diagnosis."""


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
        return self.gate.task.class_names

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
        items = [texts] if isinstance(texts, str) else list(texts)
        report, failures = self.gate.task.check_texts(self.backends, self.overrides, items,
                                                      expect, single=isinstance(texts, str))
        if failures:
            raise QuantgateCheckFailed("\n".join(failures))
        return report
