"""The embeddings task: a sentence embedder (a Hugging Face encoder, pooled as its
sentence-transformers configuration says) judged on its vectors (``embedding``: cosine to the
reference's) and on what a nearest-neighbour search over the corpus returns (``retrieval``);
embedding_gate.py has the verdicts, pooling.py the pooling. See tasks/base.py for what a task
is to the gate.

Data: ``eval`` is the corpus (JSONL with "text", optionally "id"; or plain text, one per line);
``queries`` optionally a file of queries (JSONL with "text" and optionally "relevant": corpus
indices or ids; or plain text). Without it, every corpus text (up to ``SAMPLED_QUERIES``, evenly
spread) is a query whose own row is never its neighbour. Corpus and queries are embedded in one
pass; the vectors are held in memory, as a classifier's logits are.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_bytes_atomic, write_json_atomic
from ..backends.base import BackendInfo, Runner
from ..backends.registry import BuildContext
from ..errors import BackendUnavailable, ConfigError, DataError, problem
from .base import BackendRun, CheckReport, Judged, guarded, too_long
from .batching import Batch, make_feed
from .embedding_gate import (
    Embedded,
    Queries,
    evaluate_embeddings,
    padding_cause,
    structural_causes,
)
from .pooling import MODES, Pooling, pool, pooled_output, read_pooling
from .text_classification import Shapes, planned_batches, shape_policy
from .text_files import Text, read_texts
from .text_inputs import TextInputs
from .tokenizer import Encoded

SAMPLED_QUERIES = 1000  # corpus texts used as queries when no queries file is given
PADDING_PROBE = 8  # texts the padding diagnosis runs one at a time


class DimensionNames(Sequence[str]):
    """A vector's dimensions as column names (``predict``'s columns)."""

    def __init__(self, size: int) -> None:
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        return f"dim {index % self._size}"


class Embeddings(TextInputs):
    name = "embeddings"

    # -- data --------------------------------------------------------------------------------
    @cached_property
    def corpus(self) -> list[Text]:
        return read_texts(self.config.eval, "corpus")

    @cached_property
    def query_texts(self) -> list[Text]:
        """The queries file's lines (none configured: empty)."""
        return read_texts(self.config.queries, "queries") if self.config.queries else []

    @cached_property
    def texts(self) -> list[str]:
        """Every text embedded: the corpus, then the queries file's queries."""
        return [t.text for t in self.corpus] + [q.text for q in self.query_texts]

    @cached_property
    def encoded(self) -> list[Encoded]:
        return self.session.encoder.encode(self.texts)

    @cached_property
    def pooling(self) -> Pooling:
        return read_pooling(self.config.model, self.config.pooling, self.config.normalize)

    @cached_property
    def queries(self) -> Queries:
        n = len(self.corpus)
        if not self.query_texts:
            rows = np.unique(np.linspace(0, n - 1, min(n, SAMPLED_QUERIES)).astype(np.int64))
            return Queries(rows, n, rows, None, f"{len(rows)} corpus texts as queries (each "
                           "never its own neighbour)")
        rows = np.arange(n, n + len(self.query_texts))
        relevant = [self._relevant(q) for q in self.query_texts]
        given = [r for r in relevant if r is not None]
        if given and len(given) != len(relevant):
            q = next(q for q, r in zip(self.query_texts, relevant, strict=True) if r is None)
            raise DataError(problem(f"{self.config.queries}:{q.line}: relevant", None,
                                    "relevance pairs on every query or on none",
                                    'add "relevant": [...] to that line, or drop them all'))
        source = f"{Path(self.config.queries or '').name} ({len(rows)} queries" + \
            (", with relevance pairs)" if given else ")")
        return Queries(rows, n, None, tuple(given) if given else None, source)

    def _relevant(self, query: Text) -> np.ndarray | None:
        if query.relevant is None:
            return None
        ids = {t.id: i for i, t in enumerate(self.corpus) if t.id is not None}
        rows = []
        for r in query.relevant:
            row = r if isinstance(r, int) else ids.get(r)
            if row is None or not 0 <= row < len(self.corpus):
                raise DataError(problem(f"{self.config.queries}:{query.line}: relevant", r,
                                        f"a corpus index 0..{len(self.corpus) - 1} or an id of "
                                        "the corpus's lines", "fix the relevance pair"))
            rows.append(row)
        return np.unique(np.asarray(rows, dtype=np.int64))

    @cached_property
    def class_names(self) -> Sequence[str]:
        ref = self.session.run(self.config.reference)
        dim = ref.embedded.vectors.shape[1] if ref.embedded is not None else 0
        return DimensionNames(dim)

    def n_inputs(self) -> int:
        return len(self.texts)

    def sample_texts(self, limit: int | None = None) -> list[str]:
        return [t.text for t in self.corpus[:limit]]

    def config_record(self) -> dict[str, Any]:
        return {"pooling": self.pooling.describe(), "queries": self.queries.source,
                "corpus": len(self.corpus)}

    def preflight(self) -> list[str]:
        cfg = self.config
        problems = guarded(lambda: self.corpus) + guarded(lambda: self.pooling)
        if cfg.queries is not None:
            problems += guarded(lambda: self.queries)
        calibration = cfg.calibration
        if calibration is not None:
            problems += guarded(lambda: read_texts(calibration, "calibration"))
        return problems + too_long("max_length", cfg.max_length, self.session.facts.positions)

    # -- building and running ----------------------------------------------------------------
    def build_context(self) -> BuildContext:
        return self.text_build_context(num_labels=0)

    def calibration_texts(self) -> list[str]:
        assert self.config.calibration is not None
        return [t.text for t in read_texts(self.config.calibration, "calibration")]

    def run(self, name: str, reference: Path) -> BackendRun:
        """The vectors of every text, in order (the reference's are saved afterwards, with its
        token vectors pooled the other ways, for the diagnosis)."""
        runner = self.session.runner(name)
        start = time.perf_counter()
        embedded, shapes = self._embed(runner, self.encoded, self.batch_cache,
                                       alternatives=name == self.config.reference)
        seconds = time.perf_counter() - start
        return BackendRun(name, self.config.decl(name).precision, "ok", info=runner.describe(),
                          shapes=shapes, seconds=seconds, infer_seconds=runner.infer_seconds,
                          embedded=embedded)

    def _embed(self, runner: Runner, items: Sequence[Encoded],
               batch_cache: dict[Shapes, list[Batch]] | None = None,
               alternatives: bool = False) -> tuple[Embedded, Shapes]:
        cfg = self.config
        planned, shapes = planned_batches(runner, items, batch_size=cfg.batch_size,
                                          padding=cfg.padding, pad_id=self.session.encoder.pad_id,
                                          max_length=cfg.max_length, batch_cache=batch_cache)
        out: np.ndarray | None = None
        others: dict[str, np.ndarray] = {}
        named, pooled_here = "", True
        for batch in planned:
            rows = len(batch.indices)
            mask = batch.feed["attention_mask"]
            vectors, tokens, named = pooled_output(runner.infer(batch.feed), mask, self.pooling)
            pooled_here = tokens is not None
            if out is None:
                out = np.empty((len(items), vectors.shape[1]), dtype=np.float32)
            if vectors.shape[1] != out.shape[1]:
                raise DataError(problem(f"backend {runner.name!r} output {named!r}",
                                        vectors.shape, f"(batch, {out.shape[1]}) in every batch",
                                        "export a fixed vector size"))
            out[batch.indices] = vectors[:rows]
            if alternatives and tokens is not None:
                for mode in MODES:
                    if mode != self.pooling.mode:
                        others.setdefault(mode, np.empty_like(out))[batch.indices] = \
                            pool(tokens, mask, mode)[:rows]
        if out is None:
            raise DataError(problem("texts to embed", 0, "at least one text",
                                    "configure a non-empty corpus"))
        return Embedded(out, named, pooled_here, others), shapes

    def predict(self, name: str, texts: Sequence[str]) -> np.ndarray:
        """Each text's vector (pooled and normalised as configured), (texts, dim)."""
        runner = self.session.runner(name)
        return self._embed(runner, self.session.encoder.encode(list(texts)))[0].vectors

    # -- the reference's outputs on disk -----------------------------------------------------
    def reference_parts(self) -> dict[str, Any]:
        from ..cache import hash_path

        queries = self.config.queries
        return {"task": self.name, "pooling": [self.pooling.mode, self.pooling.normalize],
                "queries": hash_path(queries) if queries is not None else None}

    def load_reference(self, folder: Path) -> BackendRun | None:
        try:
            meta = json.loads((folder / "run.json").read_text())
            vectors = np.load(folder / "vectors.npy", allow_pickle=False)
            with np.load(folder / "alternatives.npz", allow_pickle=False) as saved:
                others = {k: saved[k] for k in saved.files}
            info = BackendInfo(**{**meta["info"], "cache_hit": True})
            run = BackendRun(meta["name"], meta["precision"], "ok", info=info,
                             shapes=Shapes(**meta["shapes"]), seconds=meta["seconds"],
                             infer_seconds=meta["infer_seconds"], reference_cached=True,
                             embedded=Embedded(vectors, meta["output"], meta["pooled_here"],
                                               others))
        except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: run it again
            return None
        if vectors.ndim != 2 or len(vectors) != len(self.texts):
            return None
        return run

    def save_reference(self, folder: Path, run: BackendRun) -> None:
        """Vectors and the other poolings first, then run.json (what a reader opens first)."""
        if run.embedded is None or run.info is None or run.shapes is None:
            return
        buffer = io.BytesIO()
        np.save(buffer, run.embedded.vectors, allow_pickle=False)
        write_bytes_atomic(folder / "vectors.npy", buffer.getvalue())
        buffer = io.BytesIO()
        np.savez(buffer, **run.embedded.alternatives)  # type: ignore[arg-type]
        write_bytes_atomic(folder / "alternatives.npz", buffer.getvalue())
        write_json_atomic(folder / "run.json", {
            "name": run.name, "precision": run.precision, "info": asdict(run.info),
            "shapes": asdict(run.shapes), "seconds": run.seconds,
            "infer_seconds": run.infer_seconds, "output": run.embedded.output,
            "pooled_here": run.embedded.pooled_here})

    # -- judging -----------------------------------------------------------------------------
    def logit_scale(self) -> float | None:
        """None: cosines and neighbour overlaps have no model scale to put limits on."""
        return None

    def judge(self, name: str, ref: BackendRun, run: BackendRun, expected: bool) -> Judged:
        assert ref.embedded is not None and run.embedded is not None
        if not np.all(np.isfinite(ref.embedded.vectors)):
            raise DataError(problem(f"reference {ref.name!r} vectors", "NaN/Inf",
                                    "finite vectors", "fix the reference model or pick "
                                    "another reference"))
        return self._judge(name, ref.embedded, run.embedded, self.texts, self.queries, expected,
                           self.session.thresholds(name))

    def _judge(self, name: str, ref: Embedded, out: Embedded, texts: Sequence[str],
               queries: Queries, expected: bool, thresholds: Mapping[str, float | int],
               diagnose: bool = True) -> Judged:
        def evaluate(causes: Sequence[str]) -> tuple[dict[str, Any], dict[str, float]]:
            return evaluate_embeddings(backend=name, thresholds=thresholds, ref=ref, out=out,
                                       queries=queries, texts=texts, worst_n=self.config.worst,
                                       causes=causes, expected_failure=expected)

        records, values = evaluate(())
        if diagnose and any(r.verdict == "failed" for r in records.values()):
            causes = structural_causes(ref, out, self.pooling.mode,
                                       values.get("min_cosine_mean"))
            if not causes:
                causes = self._padding_causes(name, ref)
            if causes:
                records, values = evaluate(causes)
        return Judged(records, values)

    def _padding_causes(self, name: str, ref: Embedded) -> list[str]:
        """A few corpus texts of different lengths, batched with padding and one at a time:
        a backend right alone and wrong batched does not mask padded positions."""
        runner = self.session.runner(name)
        probe = self.probe(runner, PADDING_PROBE)
        if shape_policy(runner, "longest", 1).static_length:  # every call padded anyway
            return []
        padded = pooled_output(runner.infer(probe.feed), probe.feed["attention_mask"],
                               self.pooling)[0][: len(probe.rows)]
        alone = []
        for row in probe.rows:
            feed = make_feed([self.encoded[int(row)]], self.session.encoder.pad_id,
                             len(self.encoded[int(row)]))
            alone.append(pooled_output(runner.infer(feed), feed["attention_mask"],
                                       self.pooling)[0][0])
        cause = padding_cause(padded, np.array(alone), ref.vectors[probe.rows])
        return [cause] if cause else []

    def summary(self, run: BackendRun) -> dict[str, Any]:
        return {}

    def check_texts(self, backends: Sequence[str], overrides: Mapping[str, float | int],
                    texts: list[str], expect: Sequence[str] | str | None, single: bool
                    ) -> tuple[CheckReport, list[str]]:
        """Every backend's vectors of ``texts`` against the reference's (``embedding``) and the
        neighbours each text finds among the others (``retrieval``)."""
        from ..report.diagnosis import diagnosis

        if expect is not None:
            raise ConfigError(problem("quantgate.check expect", expect, "no expect for an "
                                      "embedder (it has no labels)", "drop expect=; the check "
                                      "compares vectors and neighbours with the reference"))
        cfg = self.config
        encoded = self.session.encoder.encode(texts)
        ref = self._embed(self.session.runner(cfg.reference), encoded)[0]
        rows = np.arange(len(texts))
        queries = Queries(rows, len(texts), rows, None, f"the {len(texts)} texts as queries")
        failures: list[str] = []
        outputs: dict[str, np.ndarray] = {}
        results: dict[str, Mapping[str, Any]] = {}
        for name in backends:
            try:
                out = self._embed(self.session.runner(name), encoded)[0]
            except BackendUnavailable as exc:
                failures.append(f"{name}: not run: {exc}")
                continue
            outputs[name] = out.vectors
            judged = self._judge(name, ref, out, texts, queries, False,
                                 self.session.thresholds(name, overrides), diagnose=False)
            results[name] = judged.records
            failures += [diagnosis(r) for r in judged.records.values() if r.verdict == "failed"
                         and not (r.check == "retrieval" and len(texts) < 3)]
        return CheckReport(tuple(texts), ref.vectors, outputs, results), failures

    @property
    def probe_items(self) -> Sequence[Encoded]:
        """The corpus only: a probe's rows are corpus texts."""
        return self.encoded[: len(self.corpus)]
