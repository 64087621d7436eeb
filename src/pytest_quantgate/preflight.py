"""What can be known before any model runs, checked once at start-up.

A bad eval line, a tokenizer that is not the model's, a window beyond the model's positions:
found after the reference pass, each cost a model run and then repeated itself once per item.
Here each is one line (what, got, expected, how to fix) before anything is built; the plugin
stops the run with them as a usage error. Configuration values were validated earlier
(config.py); this reads the model directory and the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import first_line, problem
from .tasks.base import guarded

if TYPE_CHECKING:
    from .session import GateSession

# Share of the eval texts' tokens the tokenizer maps to its unknown token above which it is not
# the model's tokenizer (a real one leaves well under 1% of English text unknown; the fallback
# that read a BERT without tokenizer.json as a 5-token vocabulary left 80%).
MAX_UNKNOWN = 0.2
SAMPLE = 200  # eval texts the unknown-token rate is measured on


def preflight(gate: GateSession) -> list[str]:
    """Every problem found, one line each; empty when the run may start."""
    problems = guarded(lambda: gate.facts)
    if problems:
        return problems  # without config.json nothing else can be judged
    problems = guarded(lambda: gate.encoder)
    if problems:
        return problems
    try:
        problems = gate.task.preflight()  # each of its own faults is one line already
    except Exception as exc:  # noqa: BLE001 - a task's bug is still one line, not a traceback
        problems = [first_line(exc)]
    if problems:
        return problems
    try:
        return tokenizer_problems(gate)
    except Exception as exc:  # noqa: BLE001 - as above
        return [first_line(exc)]


def tokenizer_problems(gate: GateSession) -> list[str]:
    """The tokenizer's vocabulary against the model's, and how much of the eval set it leaves
    unknown: a tokenizer that is not the model's makes reference and backend agree on
    meaningless input, and the gate passes."""
    encoder, facts = gate.encoder, gate.facts
    where = f"tokenizer of {gate.config.model} ({encoder.source})"
    vocab = encoder.vocab_size
    if facts.vocab_size and vocab > facts.vocab_size:
        return [problem(f"{where}: vocabulary size", vocab, f"at most the model's "
                        f"{facts.vocab_size} (vocab_size in config.json): larger ids index past "
                        "its embeddings", "save the model's own tokenizer beside it")]
    if facts.vocab_size and vocab * 2 < facts.vocab_size:
        return [problem(f"{where}: vocabulary size", vocab, f"about the model's "
                        f"{facts.vocab_size} (vocab_size in config.json)",
                        "save the model's own tokenizer (tokenizer.json) beside it")]
    unk = encoder.unk_id
    if unk is None:
        return []
    encoded = encoder.encode(gate.task.sample_texts(SAMPLE))
    tokens = sum(len(e.ids) for e in encoded)
    unknown = sum(int((e.ids == unk).sum()) for e in encoded)
    if tokens and unknown / tokens > MAX_UNKNOWN:
        return [problem(f"{where}: unknown tokens in the eval set", f"{unknown / tokens:.0%} of "
                        f"{tokens}", f"at most {MAX_UNKNOWN:.0%} (the model's tokenizer knows "
                        "its words)", "save the model's own tokenizer (tokenizer.json) beside it")]
    return []
