"""What a task is to the gate: the ``Task`` protocol, the session surface a task may use, and
``BackendRun``, what one backend's pass over the eval set produced.

A task (text classification, causal LM, ...) owns everything that differs between tasks: how
its eval data is read, how a backend is run over it, how the reference's outputs are cached,
how a backend is judged against them, which batch is timed and which rows probe a backend.
``GateSession`` only orchestrates (build once, run once, cache, lock, record errors) and never
asks which task it runs. A task object is bound to one session (``create_task``), so it keeps
its data (encoded texts, padded batches, timed feeds) for that session only.

This module imports no numpy and no framework: the checks' context and the session name these
types, and they are imported at collection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ..backends.base import BackendInfo, Runner
    from ..backends.registry import BuildContext
    from ..cache import ArtifactCache
    from ..config import Config
    from ..records import CheckResult
    from .causal_lm import Tally
    from .data import ModelFacts
    from .embedding_gate import Embedded
    from .text_classification import Shapes
    from .tokenizer import TextEncoder


@dataclass
class BackendRun:
    """What running one backend over the eval set produced (or why it could not run)."""

    name: str
    precision: str
    status: str  # "ok" | "unavailable" | "error"
    reason: str = ""
    logits: np.ndarray | None = None  # classification: (inputs, labels)
    info: BackendInfo | None = None
    shapes: Shapes | None = None
    seconds: float = 0.0  # wall time of the predictions, building excluded
    infer_seconds: float = 0.0  # time inside the runtime's calls
    reference_cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    lm: Tally | None = None  # causal LM: what the streaming pass measured (no logits kept)
    embedded: Embedded | None = None  # embeddings: every text's vector


class Session(Protocol):
    """What a task may ask of the session it is bound to (``GateSession`` is one)."""

    config: Config
    cache: ArtifactCache

    @property
    def facts(self) -> ModelFacts: ...

    @property
    def encoder(self) -> TextEncoder: ...

    @property
    def model_hash(self) -> str: ...

    @property
    def data_hashes(self) -> dict[str, str]: ...

    def runner(self, name: str) -> Runner: ...

    def run(self, name: str) -> BackendRun: ...

    def thresholds(self, name: str, overrides: Mapping[str, float | int] | None = None
                   ) -> dict[str, float | int]: ...


@dataclass(frozen=True)
class Judged:
    """A task's verdict on one backend: its built-in records and the metrics they measured."""

    records: dict[str, CheckResult]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Probe:
    """A small batch of eval inputs (``rows``: their indices) and its feed, as a backend needs
    it: what the diagnostic checks run a suspect backend and the reference on."""

    rows: np.ndarray
    feed: dict[str, np.ndarray]


@dataclass(frozen=True)
class CheckReport:
    """What one ``quantgate.check`` measured, per backend, for tests that want to assert more
    (``Task.check_texts``)."""

    texts: tuple[str, ...]
    reference: np.ndarray
    outputs: Mapping[str, np.ndarray]
    results: Mapping[str, Mapping[str, CheckResult]]


class Task(Protocol):
    """One task, bound to a session. Every method may raise ``QuantgateError`` with a
    ``problem()`` line; the session records it (never raised twice)."""

    name: str  # as configured; its built-in checks are its TaskSpec's (task_registry.py)

    @property
    def text_length(self) -> int:
        """Tokens a text may have before the model truncates or windows it."""

    @property
    def truncate_at(self) -> int:
        """Where the tokenizer cuts a text (0: never, e.g. a corpus cut into windows)."""

    @property
    def class_names(self) -> Sequence[str]:
        """Names of the columns ``predict`` returns (labels, or a causal LM's tokens)."""

    def n_inputs(self) -> int:
        """Eval inputs judged (texts, or documents)."""

    def sample_texts(self, limit: int | None = None) -> list[str]:
        """The first ``limit`` eval texts (None: the task's sample: a classification eval set
        whole, a streamed corpus's first documents)."""

    def config_record(self) -> dict[str, Any]:
        """The task's own configuration, for the run snapshot."""

    def preflight(self) -> list[str]:
        """What can be known before any model runs, one line per problem: every line of the
        eval and calibration data, the input length against the model's positions, task
        settings that can never fail (preflight.py runs it at start-up)."""

    def build_context(self) -> BuildContext:
        """What a backend's factory builds from (input names, example feed, calibration)."""

    def reference_parts(self) -> dict[str, Any]:
        """What the reference cache's key adds for this task (beyond model, data, shapes)."""

    def load_reference(self, folder: Path) -> BackendRun | None:
        """The cached reference run in ``folder``, or None (absent, partial, another shape)."""

    def save_reference(self, folder: Path, run: BackendRun) -> None:
        """Keep the reference's run in ``folder`` (a pass that streams may have done so)."""

    def run(self, name: str, reference: Path) -> BackendRun:
        """One pass of backend ``name`` over the eval set. ``reference`` is the reference
        cache's folder: where a streaming task's reference pass writes its outputs and the
        other passes read them. Raises on failure; the session records it."""

    def logit_scale(self) -> float | None:
        """The reference's logit std over the eval set, the unit of the default logit limits
        and of ``tie_margin`` (thresholds.SCALED); None where the task's defaults stay
        absolute (it may run the reference, whose pass is cached)."""

    def judge(self, name: str, ref: BackendRun, run: BackendRun, expected: bool) -> Judged:
        """The built-in records of ``run`` against the reference's ``ref``."""

    def summary(self, run: BackendRun) -> dict[str, Any]:
        """Task numbers of a run for its snapshot summary (``lm``, ``tokens_per_second``)."""

    def predict(self, name: str, texts: Sequence[str]) -> np.ndarray:
        """Per text, the backend's output for it (class logits, or next-token logits)."""

    def check_texts(self, backends: Sequence[str], overrides: Mapping[str, float | int],
                    texts: list[str], expect: Sequence[str] | str | None, single: bool
                    ) -> tuple[CheckReport, list[str]]:
        """Every backend against the reference on texts a test names, under its thresholds:
        what was measured, and a diagnosis line per failure."""

    def timed_feed(self, shapes: Shapes, size: int) -> dict[str, np.ndarray]:
        """The batch latency is timed on, padded as ``shapes`` says."""

    def probe(self, runner: Runner, size: int) -> Probe:
        """A few eval inputs, padded as ``runner`` needs, for the diagnostic checks."""

    def rows_feed(self, rows: Sequence[int]) -> dict[str, np.ndarray] | None:
        """The feed of the given eval rows (None where inputs are not rows of a batch)."""


def guarded(read: Callable[[], object]) -> list[str]:
    """The one-line problem ``read`` raises, if any (for ``Task.preflight``)."""
    from ..errors import first_line

    try:
        read()
    except Exception as exc:  # noqa: BLE001 - every fault is one line of the start-up report
        return [first_line(exc)]
    return []


def too_long(key: str, value: int, positions: int | None) -> list[str]:
    """An input length beyond the model's position embeddings (known from config.json)."""
    from ..errors import problem

    if positions is None or value <= positions:
        return []
    return [problem(key, value, f"at most the model's {positions} positions (config.json)",
                    f"set {key} = {positions} or less")]


# The heads transformers names in config.json's "architectures", by what they do. A model saved
# as one and gated as another task loads with the other head initialised at random.
HEADS = {"text-classification": ("ForSequenceClassification",),
         "causal-lm": ("ForCausalLM", "LMHeadModel"),
         "other": ("ForMaskedLM", "ForTokenClassification", "ForQuestionAnswering",
                   "ForPreTraining", "ForMultipleChoice")}


def head_problem(architectures: Sequence[str], task: str) -> list[str]:
    """The model was saved with another task's head (a custom class name says nothing)."""
    from ..errors import problem

    wanted = HEADS.get(task, ())
    others = [s for t, suffixes in HEADS.items() if t != task for s in suffixes]
    if not architectures or any(a.endswith(wanted) for a in architectures) \
            or not all(a.endswith(tuple(others)) for a in architectures):
        return []
    return [problem("config.json architectures", list(architectures), f"a model saved with "
                    f"the head of task {task!r} (...{wanted[0]})" if wanted else "its task's head",
                    "set task to what the model was trained for, or save the model with that "
                    "head (its weights would otherwise be initialised at random)")]
