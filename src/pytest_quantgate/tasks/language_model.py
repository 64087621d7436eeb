"""The causal-LM task: a corpus streamed in windows, judged on perplexity and next-token
agreement (lm_gate.py); the pass itself is causal_lm.py, without a session. The reference's
numbers go to files (lm_reference.py) that every other backend's pass reads back batch by batch,
so nothing held grows with the corpus. See tasks/base.py for what a task is to the gate."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..backends.base import BackendInfo, Runner
from ..backends.registry import BuildContext
from ..errors import BackendUnavailable, ConfigError, DataError, problem
from ..progress import phase
from .base import BackendRun, CheckReport, Judged, Probe, Session, guarded, head_problem, too_long
from .causal_lm import INPUT_NAMES, Tally, final_logits, lm_latency_feed, run_pass
from .corpus import iter_documents
from .lm_gate import evaluate_lm
from .lm_reference import ReferenceReader, ReferenceWriter
from .lm_windows import Source, iter_windows, make_lm_feed, window_batches
from .text_classification import Shapes, shape_policy


class TokenNames(Sequence[str]):
    """A causal LM's vocabulary as column names, decoded on demand (50k+ tokens)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __len__(self) -> int:
        return self._session.facts.vocab_size

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return repr(self._session.encoder.decode_token(int(index)))


class CausalLM:
    name = "causal-lm"

    def __init__(self, session: Session) -> None:
        self.session = session
        self.config = session.config
        self._feeds: dict[tuple[Shapes, int], dict[str, np.ndarray]] = {}  # timed batches

    # -- data --------------------------------------------------------------------------------
    def source(self, path: Path | None = None, texts: Sequence[str] | None = None) -> Source:
        """Documents of a corpus file (default: the eval corpus) or of given texts, with the
        model's tokenizer; read afresh on every pass (the corpus is streamed, never held)."""
        corpus, encoder = path or self.config.eval, self.session.encoder

        def documents() -> Iterator[str]:
            if texts is not None:
                yield from texts
            else:
                yield from (d.text for d in iter_documents(corpus))

        def encode(batch: list[str]) -> list[np.ndarray]:
            return [e.ids for e in encoder.encode(batch)]

        return Source(documents, encode, encoder.pad_id)

    @property
    def text_length(self) -> int:
        return self.config.window

    @property
    def truncate_at(self) -> int:
        return 0  # a document is never truncated: it is cut into windows

    @cached_property
    def class_names(self) -> Sequence[str]:
        return TokenNames(self.session)

    def n_inputs(self) -> int:
        """Documents, as the reference's pass counted them."""
        ref = self.session.run(self.config.reference)
        return ref.lm.docs if ref.lm is not None else 0

    def sample_texts(self, limit: int | None = None) -> list[str]:
        """The corpus's first ``limit`` documents, read only that far (None: a sample of 200:
        a corpus may be larger than memory)."""
        return [d.text for d in islice(iter_documents(self.config.eval), limit or 200)]

    def config_record(self) -> dict[str, Any]:
        return {"window": self.config.window, "stride": self.config.stride}

    def preflight(self) -> list[str]:
        """Every document of the corpus (and calibration corpus) read once: UTF-8, JSONL lines,
        not empty; the window against the model's positions."""
        cfg = self.config

        def read(path: Path) -> None:
            for _ in iter_documents(path):  # raises on the first bad line, or on no text
                pass

        problems = guarded(lambda: read(cfg.eval))
        calibration = cfg.calibration
        if calibration is not None:
            problems += guarded(lambda: read(calibration))
        return (problems + too_long("window", cfg.window, self.session.facts.positions)
                + head_problem(self.session.facts.architectures, self.name))

    @cached_property
    def k(self) -> int:
        """The top-k the reference records: the largest any backend's thresholds ask for."""
        cfg = self.config
        return max(int(self.session.thresholds(b)["topk"]) for b in cfg.backends) \
            if cfg.backends else 3

    def static_shapes(self, name: str) -> dict[str, Any]:
        """The static sequence length and batch a backend declares (None where dynamic)."""
        shapes = shape_policy(self.session.runner(name), "longest", self.config.batch_size)
        return {"static_length": shapes.static_length, "static_batch": shapes.static_batch}

    # -- building and running ----------------------------------------------------------------
    def build_context(self) -> BuildContext:
        cfg, session = self.config, self.session

        def example_feed() -> dict[str, np.ndarray]:
            windows = iter_windows(self.source(), cfg.window, cfg.stride)
            return make_lm_feed([next(windows), next(windows)], session.encoder.pad_id)

        def calibration_batches() -> Iterator[dict[str, np.ndarray]]:
            if cfg.calibration is None:
                return
            windows = iter_windows(self.source(cfg.calibration), cfg.window, cfg.stride)
            for _, feed in window_batches(windows, batch_size=cfg.batch_size,
                                          pad_id=session.encoder.pad_id):
                yield feed

        return BuildContext(
            model_dir=cfg.model, model_hash=session.model_hash, cache=session.cache,
            max_length=cfg.window, num_labels=0, vocab_size=session.facts.vocab_size,
            input_names=INPUT_NAMES, example_feed=example_feed,
            calibration_batches=calibration_batches,
            calibration_hash=session.data_hashes.get("calibration"), base_dir=cfg.base_dir,
            task=self.name)

    def run(self, name: str, reference: Path) -> BackendRun:
        """One streaming pass: the reference writes its numbers into ``reference``, any other
        backend is compared with them as it goes."""
        cfg, session = self.config, self.session
        decl, is_ref = cfg.decl(name), name == cfg.reference
        runner = session.runner(name)
        shapes = shape_policy(runner, "longest", cfg.batch_size)
        reader = None
        if not is_ref:
            ref = session.run(cfg.reference)
            if ref.status != "ok":
                return BackendRun(name, decl.precision, "error",
                                  f"the reference {ref.name!r} could not run: {ref.reason}")
            reader = ReferenceReader(reference)
        writer = ReferenceWriter(reference) if is_ref else None
        k = self.k if is_ref else int(session.thresholds(name)["topk"])
        start = time.perf_counter()
        who = "reference" if is_ref else "backend"
        try:
            with phase(f"{who} {name} on the corpus", unit="windows") as tracker:
                tally = run_pass(runner, self.source(), window=cfg.window, stride=cfg.stride,
                                 batch_size=cfg.batch_size, k=k, reference=reader,
                                 writer=writer, worst_n=cfg.worst,
                                 static_length=shapes.static_length,
                                 static_batch=shapes.static_batch, on_batch=tracker.advance)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            if reader is not None:
                reader.close()
        seconds = time.perf_counter() - start
        run = BackendRun(name, decl.precision, "ok", info=runner.describe(), shapes=shapes,
                         seconds=seconds, infer_seconds=runner.infer_seconds, lm=tally)
        if writer is not None:
            assert run.info is not None
            writer.finish({"k": k, "tally": tally.to_dict(), "name": name,
                           "precision": run.precision, "info": asdict(run.info),
                           "shapes": asdict(shapes), "seconds": seconds,
                           "infer_seconds": run.infer_seconds})
        return run

    def predict(self, name: str, texts: Sequence[str]) -> np.ndarray:
        """The next-token logits after each text (its final position), (texts, vocab)."""
        cfg, texts = self.config, list(texts)
        out = final_logits(self.session.runner(name), self.source(texts=texts),
                           window=cfg.window, stride=cfg.stride, batch_size=cfg.batch_size,
                           **self.static_shapes(name))
        if len(out) != len(texts):
            raise DataError(problem("texts to predict", f"{len(texts) - len(out)} that "
                                    "tokenise to nothing", "texts with at least one token",
                                    "drop empty texts (or use a tokenizer that adds BOS)"))
        return out

    # -- the reference's outputs on disk -----------------------------------------------------
    def reference_parts(self) -> dict[str, Any]:
        cfg = self.config
        return {"task": self.name, "window": cfg.window, "stride": cfg.stride, "k": self.k}

    def load_reference(self, folder: Path) -> BackendRun | None:
        """The cached reference run, or None when absent, incomplete or recorded with a
        smaller k."""
        try:
            reader = ReferenceReader(folder)  # checks every file's size against the counts
            reader.close()
            meta = reader.meta
            tally = Tally(**meta["tally"])
            info = BackendInfo(**{**meta["info"], "cache_hit": True})
            if meta.get("k", 0) < self.k:
                return None
            return BackendRun(meta["name"], meta["precision"], "ok", info=info,
                              shapes=Shapes(**meta["shapes"]), seconds=meta["seconds"],
                              infer_seconds=meta["infer_seconds"], reference_cached=True,
                              lm=tally)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save_reference(self, folder: Path, run: BackendRun) -> None:
        """Nothing left to do: the reference's pass streamed its numbers into ``folder``."""

    # -- judging -----------------------------------------------------------------------------
    def logit_scale(self) -> float | None:
        """None: the LM's logit limits stay absolute (LM_DEFAULTS, measured on the demo GPT-2
        only; no real pretrained causal LM could be measured here to set a scale from)."""
        return None

    def judge(self, name: str, ref: BackendRun, run: BackendRun, expected: bool) -> Judged:
        assert ref.lm is not None and run.lm is not None
        if ref.lm.nonfinite:
            raise DataError(problem(f"reference {ref.name!r} log-likelihoods", "NaN/Inf",
                                    "finite logits", "fix the reference model or pick "
                                    "another reference"))
        records, values = evaluate_lm(
            backend=name, reference=ref.name, thresholds=self.session.thresholds(name),
            ref=ref.lm, out=run.lm, token_text=self.session.encoder.decode_token,
            expected_failure=expected)
        return Judged(records, values)

    def summary(self, run: BackendRun) -> dict[str, Any]:
        """The pass's counts and perplexity, and tokens per second."""
        if run.lm is None:
            return {}
        return {"lm": {**run.lm.to_dict(), "ppl": run.lm.ppl},
                "tokens_per_second": run.lm.tokens / run.seconds if run.seconds else None}

    def check_texts(self, backends: Sequence[str], overrides: Mapping[str, float | int],
                    texts: list[str], expect: Sequence[str] | str | None, single: bool
                    ) -> tuple[CheckReport, list[str]]:
        """Perplexity and next-token agreement of every backend on ``texts`` (each one a
        document), under the test's thresholds: ``ppl`` and ``next-token`` as in the gate."""
        from ..report.diagnosis import diagnosis

        if expect is not None:
            raise ConfigError(problem("quantgate.check expect", expect, "no expect for a causal "
                                      "LM (it has no labels)", "drop expect=; the check "
                                      "compares perplexity and next tokens with the reference"))
        session, cfg = self.session, self.config
        k = max([int(session.thresholds(b, overrides)["topk"]) for b in backends] or [3])
        source = self.source(texts=texts)
        kwargs: dict[str, Any] = {"window": cfg.window, "stride": cfg.stride,
                                  "batch_size": cfg.batch_size}
        failures: list[str] = []
        outputs: dict[str, np.ndarray] = {}
        results: dict[str, Mapping[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="quantgate-check-") as tmp:
            writer = ReferenceWriter(Path(tmp) / "reference")
            ref = run_pass(session.runner(cfg.reference), source, k=k, writer=writer,
                           worst_n=0, **kwargs, **self.static_shapes(cfg.reference))
            writer.finish({"k": k, "tally": ref.to_dict()})
            for name in backends:
                reader = ReferenceReader(Path(tmp) / "reference")
                try:
                    out = run_pass(session.runner(name), source, k=int(session.thresholds(
                        name, overrides)["topk"]), reference=reader, worst_n=cfg.worst,
                                   **kwargs, **self.static_shapes(name))
                except BackendUnavailable as exc:
                    failures.append(f"{name}: not run: {exc}")
                    continue
                finally:
                    reader.close()
                res, _ = evaluate_lm(backend=name, reference=cfg.reference,
                                     thresholds=session.thresholds(name, overrides), ref=ref,
                                     out=out, token_text=session.encoder.decode_token)
                results[name] = res
                outputs[name] = self.predict(name, texts)  # next-token logits, for the report
                failures += [diagnosis(r) for r in res.values() if r.verdict == "failed"]
        return CheckReport(tuple(texts), self.predict(cfg.reference, texts), outputs,
                           results), failures

    # -- feeds for latency and the diagnostic checks -----------------------------------------
    def timed_feed(self, shapes: Shapes, size: int) -> dict[str, np.ndarray]:
        """The corpus's first full-length windows (causal_lm.lm_latency_feed), once per
        shapes and size."""
        cfg, key = self.config, (shapes, size)
        if key not in self._feeds:
            self._feeds[key] = lm_latency_feed(
                self.source(), size, window=cfg.window, stride=cfg.stride,
                static_length=shapes.static_length, static_batch=shapes.static_batch)
        return dict(self._feeds[key])

    # A window is up to 128+ positions: 8 of them probe as much as 32 texts.
    PROBE_WINDOWS = 8

    def probe(self, runner: Runner, size: int) -> Probe:
        """The corpus's first windows (at most ``PROBE_WINDOWS``), as one batch."""
        cfg = self.config
        size = min(size, self.PROBE_WINDOWS)
        shapes = shape_policy(runner, "longest", size)
        windows = list(islice(iter_windows(self.source(), cfg.window, cfg.stride),
                              shapes.static_batch or size))
        feed = make_lm_feed(windows, self.session.encoder.pad_id, shapes.static_length,
                            shapes.static_batch)
        return Probe(np.arange(len(windows)), feed)

    def rows_feed(self, rows: Sequence[int]) -> dict[str, np.ndarray] | None:
        return None  # a document is many windows, not one row of a batch
