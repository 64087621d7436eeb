"""The adversarial check's registration. Imported at collection: no numpy, no Hypothesis here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..checks import CheckSpec, register

if TYPE_CHECKING:
    from ..checks import CheckContext


def _applies(gate: CheckContext, backend: str) -> bool:
    return backend != gate.config.reference and gate.config.adversarial_max_examples > 0


register(CheckSpec("adversarial", "pytest_quantgate.adversarial.check:check", _applies,
                   "generated inputs (typos, scripts, numbers, markup, long texts...) stay within "
                   "the thresholds; failures shrunk by Hypothesis and replayed first next run "
                   "(causal LM: the next-token logits after each generated prompt; embeddings: "
                   "each generated query's vector and nearest corpus text)",
                   tasks=("text-classification", "causal-lm", "embeddings")))
