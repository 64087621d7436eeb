"""One gate run: load data once, get the reference outputs, run each backend, judge it.

No pytest here: the plugin asks this object for records, and a script can use it directly::

    gate = GateSession(config)
    for name in config.backends:
        print(gate.results(name))
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import locked
from .backends.base import BackendInfo, Runner
from .backends.registry import BuildContext, create_runner
from .cache import ArtifactCache, hash_path
from .checks import builtin_checks
from .config import Config
from .errors import BackendUnavailable, DataError, QuantgateError, first_line, problem
from .gate import evaluate
from .records import CheckResult
from .reference_cache import load_reference, reference_dir, save_reference
from .tasks.batching import Batch, batches, make_feed
from .tasks.data import Example, ModelFacts, read_examples, read_model_facts
from .tasks.text_classification import Shapes, predict_logits
from .tasks.tokenizer import Encoded, TextEncoder
from .thresholds import resolve

if TYPE_CHECKING:
    from .latency import LatencyStats
    from .tasks.causal_lm import Source, Tally


@dataclass
class BackendRun:
    """What running one backend over the eval set produced (or why it could not run)."""

    name: str
    precision: str
    status: str  # "ok" | "unavailable" | "error"
    reason: str = ""
    logits: np.ndarray | None = None
    info: BackendInfo | None = None
    shapes: Shapes | None = None
    seconds: float = 0.0  # wall time of the predictions, building excluded
    infer_seconds: float = 0.0  # time inside the runtime's calls
    reference_cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    lm: Tally | None = None  # causal LM: what the streaming pass measured (no logits kept)


class GateSession:
    """Lazily loads everything; each backend is built and run at most once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cache = ArtifactCache(config.cache_dir / "artifacts")
        self.runners: dict[str, Runner] = {}
        self._runs: dict[str, BackendRun] = {}
        self._results: dict[str, dict[str, CheckResult]] = {}
        self.metrics: dict[str, dict[str, float]] = {}
        self.batch_cache: dict[Shapes, list[Batch]] = {}  # eval-set batches, padded once
        self.feed_cache: dict[tuple[Shapes, int], dict[str, np.ndarray]] = {}  # timed batches
        self._extra: dict[str, dict[str, CheckResult]] = {}  # records of registered checks
        self.latency: dict[str, dict[int, LatencyStats]] = {}  # backend -> batch size -> timing

    # -- data --------------------------------------------------------------------------------
    @property
    def is_lm(self) -> bool:
        return self.config.task == "causal-lm"

    @cached_property
    def facts(self) -> ModelFacts:
        return read_model_facts(self.config.model, need_labels=not self.is_lm)

    @cached_property
    def encoder(self) -> TextEncoder:
        # A causal LM's documents are never truncated: they are cut into windows.
        return TextEncoder.from_model_dir(self.config.model,
                                          0 if self.is_lm else self.config.max_length)

    @cached_property
    def examples(self) -> list[Example]:
        """The eval set in memory: classification only (a causal LM's corpus is streamed)."""
        if self.is_lm:
            raise DataError("the causal-LM corpus is streamed, not held: use GateSession."
                            "lm_source() (a bug if you see this from the plugin)")
        return read_examples(self.config.eval, self.facts.labels)

    def lm_source(self, path: Path | None = None, texts: list[str] | None = None) -> Source:
        """Documents of a corpus file (default: the eval corpus) or of given texts, with the
        model's tokenizer, for the causal-LM passes."""
        from .tasks.causal_lm import Source
        from .tasks.corpus import iter_documents

        corpus = path or self.config.eval

        def documents() -> Iterator[str]:
            if texts is not None:
                yield from texts
            else:
                yield from (d.text for d in iter_documents(corpus))

        def encode(batch: list[str]) -> list[np.ndarray]:
            return [e.ids for e in self.encoder.encode(batch)]

        return Source(documents, encode, self.encoder.pad_id)

    def token_text(self, token_id: int) -> str:
        return self.encoder.decode_token(token_id)

    @cached_property
    def class_names(self) -> Sequence[str]:
        """Names of the columns ``predict`` returns: labels, or a causal LM's tokens."""
        if self.is_lm:
            from .lm_session import TokenNames

            return TokenNames(self)
        return self.facts.labels

    def sample_texts(self, limit: int | None = None) -> list[str]:
        """The first ``limit`` eval texts (None: all); a causal LM's corpus is read only that
        far."""
        if not self.is_lm:
            return [e.text for e in self.examples[:limit]]
        from itertools import islice

        from .tasks.corpus import iter_documents

        return [d.text for d in islice(iter_documents(self.config.eval), limit)]

    def predict(self, name: str, texts: Sequence[str]) -> np.ndarray:
        """Per text, what the backend outputs for it, widened to at least float32: the class
        logits, or for a causal LM the next-token logits after the text (its final position)."""
        cfg, texts = self.config, list(texts)
        runner = self.runner(name)
        if self.is_lm:
            from .tasks.causal_lm import final_logits

            out = final_logits(runner, self.lm_source(texts=texts), window=cfg.window,
                               stride=cfg.stride, batch_size=cfg.batch_size,
                               **self.static_shapes(name))
            if len(out) != len(texts):
                raise DataError(problem("texts to predict", f"{len(texts) - len(out)} that "
                                        "tokenise to nothing", "texts with at least one token",
                                        "drop empty texts (or use a tokenizer that adds BOS)"))
            return out
        logits, _ = predict_logits(runner, self.encoder.encode(texts), batch_size=cfg.batch_size,
                                   padding=cfg.padding, pad_id=self.encoder.pad_id,
                                   max_length=cfg.max_length, num_labels=len(self.facts.labels))
        return logits

    def static_shapes(self, name: str) -> dict[str, Any]:
        """The static sequence length and batch a backend declares (None where dynamic)."""
        from .tasks.text_classification import shape_policy

        shapes = shape_policy(self.runner(name), "longest", self.config.batch_size)
        return {"static_length": shapes.static_length, "static_batch": shapes.static_batch}

    @property
    def n_inputs(self) -> int:
        """Eval inputs: texts, or a causal LM's documents (counted by the reference's pass)."""
        if not self.is_lm:
            return len(self.examples)
        ref = self.run(self.config.reference)
        return ref.lm.docs if ref.lm is not None else 0

    @property
    def text_length(self) -> int:
        """Tokens a text may have before the model truncates or windows it."""
        return self.config.window if self.is_lm else self.config.max_length

    @cached_property
    def lm_k(self) -> int:
        """The top-k the reference records: the largest any backend's thresholds ask for."""
        return max(int(self.thresholds(b)["topk"]) for b in self.config.backends) \
            if self.config.backends else 3

    @cached_property
    def encoded(self) -> list[Encoded]:
        return self.encoder.encode([e.text for e in self.examples])

    @cached_property
    def labels(self) -> np.ndarray | None:
        if any(e.label is None for e in self.examples):
            return None
        return np.array([e.label for e in self.examples], dtype=np.int64)

    @cached_property
    def model_hash(self) -> str:
        return hash_path(self.config.model)

    @cached_property
    def data_hashes(self) -> dict[str, str]:
        files = {"eval": self.config.eval, "calibration": self.config.calibration}
        return {k: hash_path(v) for k, v in files.items() if v is not None}

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """What this run measured on (versions, commit, machine, model and data hashes), once
        per session: the snapshot and the baseline comparison's warnings both read it."""
        from .manifest import build_manifest

        cfg = self.config
        files = {"eval": cfg.eval, **({"calibration": cfg.calibration} if cfg.calibration else {})}
        return build_manifest(model_dir=cfg.model, data_files=files,
                              extra={"tokenizer": self.encoder.source, "task": cfg.task})

    def context(self) -> BuildContext:
        cfg = self.config
        if self.is_lm:
            from .lm_session import lm_context

            return lm_context(self)

        def example_feed() -> dict[str, np.ndarray]:
            items = self.encoded[:2]
            return make_feed(items, self.encoder.pad_id, max(len(i) for i in items))

        def calibration_batches() -> Iterator[dict[str, np.ndarray]]:
            if cfg.calibration is None:
                return
            texts = [e.text for e in read_examples(cfg.calibration, self.facts.labels,
                                                   require_label=False)]
            for batch in batches(self.encoder.encode(texts), batch_size=cfg.batch_size,
                                 padding="longest", pad_id=self.encoder.pad_id,
                                 max_length=cfg.max_length):
                yield batch.feed

        return BuildContext(
            model_dir=cfg.model, model_hash=self.model_hash, cache=self.cache,
            max_length=cfg.max_length, num_labels=len(self.facts.labels),
            vocab_size=self.facts.vocab_size,
            input_names=("input_ids", "attention_mask", "token_type_ids"),
            example_feed=example_feed, calibration_batches=calibration_batches,
            calibration_hash=self.data_hashes.get("calibration"), base_dir=cfg.base_dir,
        )

    # -- running -----------------------------------------------------------------------------
    def runner(self, name: str) -> Runner:
        """The activated runner of a backend, built or loaded on first use."""
        if name not in self.runners:
            self.runners[name] = create_runner(self.config.decl(name), self.context()).activate()
        return self.runners[name]

    def ran(self, name: str) -> BackendRun | None:
        """The backend's run if it has run in this session (never starts one)."""
        return self._runs.get(name)

    def run(self, name: str) -> BackendRun:
        if name not in self._runs:
            self._runs[name] = (self._reference_run() if name == self.config.reference
                                else self._run(name))
        return self._runs[name]

    def _run(self, name: str) -> BackendRun:
        decl = self.config.decl(name)
        try:
            if self.is_lm:
                from .lm_session import run_lm

                return run_lm(self, name)
            runner = self.runner(name)
            start = time.perf_counter()
            logits, shapes = predict_logits(
                runner, self.encoded, batch_size=self.config.batch_size,
                padding=self.config.padding, pad_id=self.encoder.pad_id,
                max_length=self.config.max_length, num_labels=len(self.facts.labels),
                batch_cache=self.batch_cache)
            seconds = time.perf_counter() - start
        except BackendUnavailable as exc:
            return BackendRun(name, decl.precision, "unavailable", str(exc))
        except QuantgateError as exc:
            return BackendRun(name, decl.precision, "error", str(exc))
        except Exception as exc:  # a runtime's own error: keep its type and first line
            return BackendRun(name, decl.precision, "error",
                              f"backend {name!r} raised {first_line(exc)}")
        return BackendRun(name, decl.precision, "ok", logits=logits, info=runner.describe(),
                          shapes=shapes, seconds=seconds, infer_seconds=runner.infer_seconds)

    def _reference_run(self) -> BackendRun:
        """The reference's outputs from the cache, or its pass run once across processes: under
        a lock per cache entry, so a second pytest-xdist worker waits and then loads them."""
        name = self.config.reference
        try:
            folder = reference_dir(self)
        except Exception as exc:  # the model or eval set cannot be read: that is the record
            return BackendRun(name, self.config.decl(name).precision, "error", first_line(exc))
        with locked(folder.with_name(folder.name + ".lock")):
            cached = load_reference(self)
            if cached is not None:
                return cached
            run = self._run(name)
            if run.status == "ok" and run.logits is not None:
                try:
                    save_reference(self, run)
                except OSError as exc:  # the run is good; only the next one pays for it again
                    run.extra["cache"] = (f"reference outputs not cached: {first_line(exc)}; "
                                          "make cache_dir writable")
        return run

    # -- judging -----------------------------------------------------------------------------
    def thresholds(self, name: str, overrides: dict[str, float | int] | None = None
                   ) -> dict[str, float | int]:
        return resolve(name, self.config.decl(name).precision, self.config.thresholds, overrides,
                       self.config.task)

    def results(self, name: str) -> dict[str, CheckResult]:
        """The records of the built-in checks of one backend."""
        if name not in self._results:
            expected = name in self.config.expect_fail
            try:
                self._results[name] = self._judge(name, expected)
            except Exception as exc:  # recorded once as the checks' error, never raised again
                verdict = "skipped" if isinstance(exc, BackendUnavailable) else "error"
                self._results[name] = {c: CheckResult(name, c, verdict, first_line(exc),
                                                      expected_failure=expected)
                                       for c in builtin_checks(self.config.task)}
        return self._results[name]

    def _judge(self, name: str, expected: bool) -> dict[str, CheckResult]:
        ref, run = self.run(self.config.reference), self.run(name)
        problem_run = run if run.status != "ok" else ref if ref.status != "ok" else None
        if problem_run is not None:
            verdict = "skipped" if problem_run.status == "unavailable" else "error"
            reason = problem_run.reason
            if problem_run is ref:
                reason = f"the reference {ref.name!r} could not run: {reason}"
            out = {c: CheckResult(name, c, verdict, reason, expected_failure=expected)
                   for c in builtin_checks(self.config.task)}
        elif self.is_lm:
            from .lm_gate import evaluate_lm

            assert ref.lm is not None and run.lm is not None
            if ref.lm.nonfinite:
                raise DataError(problem(f"reference {ref.name!r} log-likelihoods", "NaN/Inf",
                                        "finite logits", "fix the reference model or pick "
                                        "another reference"))
            out, values = evaluate_lm(
                backend=name, reference=ref.name, thresholds=self.thresholds(name), ref=ref.lm,
                out=run.lm, token_text=self.token_text, expected_failure=expected)
            self.metrics[name] = values
        else:
            assert ref.logits is not None and run.logits is not None
            if not np.all(np.isfinite(ref.logits)):
                raise DataError(problem(f"reference {ref.name!r} outputs", "NaN/Inf",
                                        "finite logits", "fix the reference model or pick "
                                        "another reference"))
            out, values = evaluate(
                backend=name, thresholds=self.thresholds(name), ref=ref.logits,
                out=run.logits, labels=self.labels, label_names=self.facts.labels,
                texts=[e.text for e in self.examples], worst_n=self.config.worst,
                expected_failure=expected)
            self.metrics[name] = values
            from .inspect.causes import explain

            out = explain(self, name, out)  # a failure names its cause (docs/diagnostics.md)
        return out

    def check(self, name: str, check: str) -> CheckResult:
        """The record of any check of a backend: built-in ones from ``results``, others from
        their registered function (run once, errors recorded, never passed)."""
        from .checks import EXTRA_CHECKS

        if check in builtin_checks(self.config.task):
            return self.results(name)[check]
        done = self._extra.setdefault(name, {})
        if check not in done:
            expected = name in self.config.expect_fail
            try:
                result = EXTRA_CHECKS[check].run(self, name)
            except BackendUnavailable as exc:
                result = CheckResult(name, check, "skipped", str(exc))
            except Exception as exc:  # a bug or a runtime's error: an error record, not a pass
                result = CheckResult(name, check, "error", first_line(exc))
            if result.expected_failure != expected:
                from dataclasses import replace

                result = replace(result, expected_failure=expected)
            done[check] = result
        return done[check]

    def records(self, name: str) -> dict[str, CheckResult]:
        """Every record of a backend computed so far, built-in checks first."""
        return {**self.results(name), **self._extra.get(name, {})}

    def judged(self) -> list[str]:
        """Backends whose checks have run, in configured order (a -k run judges fewer)."""
        return [name for name in self.config.backends if name in self._results]

    def all_results(self) -> list[CheckResult]:
        return [r for name in self.judged() for r in self.records(name).values()]

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()
        self.runners.clear()
