"""tasks/pooling.py and tasks/embedding_gate.py on hand-made vectors: pooling as
sentence-transformers does it, the verdicts of embedding and retrieval, the structural causes
and the padding cause."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_quantgate.errors import DataError
from pytest_quantgate.records import CheckResult
from pytest_quantgate.tasks.embedding_gate import (
    Embedded,
    Queries,
    _recall,
    cosines,
    evaluate_embeddings,
    padding_cause,
    structural_causes,
)
from pytest_quantgate.tasks.pooling import normalise, pool, read_pooling
from pytest_quantgate.thresholds import resolve

# -- pooling -------------------------------------------------------------------------------------
HIDDEN = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # the third position is padding
MASK = np.array([[1, 1, 0]])


def test_pooling_leaves_padded_positions_out() -> None:
    assert pool(HIDDEN, MASK, "mean").tolist() == [[2.0, 3.0]]
    assert pool(HIDDEN, MASK, "cls").tolist() == [[1.0, 2.0]]
    assert pool(HIDDEN, MASK, "max").tolist() == [[3.0, 4.0]]


def test_normalise_keeps_a_zero_vector_zero() -> None:
    out = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def _st_dir(root: Path, modules: list[str], pooling: dict[str, bool]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    entries = [{"idx": i, "name": str(i), "path": "1_Pooling" if kind == "Pooling" else "",
                "type": f"sentence_transformers.models.{kind}"} for i, kind in enumerate(modules)]
    (root / "modules.json").write_text(json.dumps(entries))
    (root / "1_Pooling").mkdir(exist_ok=True)
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return root


def test_pooling_is_read_from_the_sentence_transformers_files(tmp_path: Path) -> None:
    model = _st_dir(tmp_path / "m", ["Transformer", "Pooling", "Normalize"],
                    {"pooling_mode_cls_token": True})
    got = read_pooling(model)
    assert (got.mode, got.normalize, got.source) == ("cls", True, "modules.json")
    configured = read_pooling(model, "mean", False)  # configured values win
    assert (configured.mode, configured.normalize, configured.source) == ("mean", False,
                                                                          "configured")
    bare = read_pooling(tmp_path)  # no modules.json: mean, no normalisation
    assert (bare.mode, bare.normalize) == ("mean", False)


def test_a_pipeline_the_gate_cannot_run_is_one_line(tmp_path: Path) -> None:
    model = _st_dir(tmp_path / "dense", ["Transformer", "Pooling", "Dense"],
                    {"pooling_mode_mean_tokens": True})
    with pytest.raises(DataError, match=r"modules: got .*Dense.*, expected Transformer, "
                                        r"Pooling and optionally Normalize"):
        read_pooling(model)


# -- verdicts ------------------------------------------------------------------------------------
RNG = np.random.default_rng(0)
CORPUS = normalise(RNG.normal(size=(40, 16)))


def _queries(n_corpus: int = 40, relevant: bool = False) -> Queries:
    rows = np.arange(n_corpus)
    rel = tuple(np.array([(i + 1) % n_corpus]) for i in rows) if relevant else None
    return Queries(rows, n_corpus, rows, rel, "the corpus")


def _judge(out: np.ndarray, precision: str = "int8", **queries: bool
           ) -> tuple[dict[str, CheckResult], dict[str, float]]:
    ref = Embedded(CORPUS, "last_hidden_state", True)
    return evaluate_embeddings(backend="cand", thresholds=resolve("cand", precision, {},
                                                                  task="embeddings"),
                               ref=ref, out=Embedded(out, "last_hidden_state", True),
                               queries=_queries(**queries),
                               texts=[f"t{i}" for i in range(40)], worst_n=3)


def test_identical_vectors_pass_both_checks() -> None:
    results, values = _judge(CORPUS.copy(), "fp32")
    assert {c: r.verdict for c, r in results.items()} == {"embedding": "passed",
                                                          "retrieval": "passed"}
    assert values["min_cosine"] == pytest.approx(1.0) and values["neighbour_overlap"] == 1.0


def test_a_permutation_fails_embedding_and_keeps_retrieval() -> None:
    order = np.roll(np.arange(16), 1)
    results, values = _judge(CORPUS[:, order], "fp32")
    assert results["embedding"].verdict == "failed"
    assert results["retrieval"].verdict == "passed"  # similarities among its own vectors kept
    assert values["neighbour_overlap"] == 1.0
    ref, out = Embedded(CORPUS, "x", True), Embedded(CORPUS[:, order], "x", True)
    causes = structural_causes(ref, out, "mean", values["min_cosine_mean"])
    assert causes and "permuted" in causes[0], causes


def test_noise_that_reorders_neighbours_fails_retrieval() -> None:
    noisy = normalise(CORPUS + RNG.normal(scale=0.6, size=CORPUS.shape))
    results, values = _judge(noisy)
    assert values["neighbour_overlap"] < 0.7
    assert results["retrieval"].verdict in ("failed", "inconclusive")
    assert results["retrieval"].reason.startswith(("neighbour_overlap", "inconclusive"))


def test_nan_vectors_fail_embedding_with_their_reason() -> None:
    out = CORPUS.copy()
    out[:] = np.nan
    results, _ = _judge(out)
    assert results["embedding"].verdict == "failed"
    assert results["embedding"].reason.startswith("backend vectors are NaN/Inf on 40/40")


def test_cosines_are_nan_for_nonfinite_rows() -> None:
    a = np.array([[1.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 2.0], [np.nan, 0.0]])
    got = cosines(a, b)
    assert got[0] == pytest.approx(0.0) and np.isnan(got[1])


def test_recall_is_capped_at_k() -> None:
    top = np.array([[0, 1, 2]])  # k = 3
    assert _recall(top, [np.array([0, 1, 2, 3, 4])]).tolist() == [1.0]  # 3 of min(3, 5)
    assert _recall(top, [np.array([2, 9])]).tolist() == [0.5]
    assert _recall(top, [np.array([], dtype=int)]).tolist() == [1.0]  # nothing to find


# -- the padding cause ---------------------------------------------------------------------------
PROBE = normalise(np.random.default_rng(1).normal(size=(8, 16)))  # the reference's vectors


def _at_cosine(reference: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    """Vectors at exactly ``cosine`` to each reference row: the row turned towards a random
    direction orthogonal to it."""
    other = np.random.default_rng(seed).normal(size=reference.shape)
    other -= (other * reference).sum(axis=1, keepdims=True) * reference
    other = normalise(other)
    return cosine * reference + np.sqrt(1.0 - cosine ** 2) * other


def test_a_backend_right_alone_and_wrong_padded_is_named() -> None:
    padded = _at_cosine(PROBE, 0.9, seed=2)  # padded positions leak into attention
    cause = padding_cause(padded, PROBE.copy(), PROBE)
    assert cause is not None
    assert cause.startswith("the backend's vectors change with the padding of the batch: mean "
                            "cosine 1.0000 to the reference for texts run one at a time, 0.9000 "
                            "batched with padding; padded positions leak into attention"), cause
    # right alone within an INT8 backend's drift (0.998), still far off padded: named too
    int8 = padding_cause(_at_cosine(PROBE, 0.95, seed=3), _at_cosine(PROBE, 0.998, seed=4), PROBE)
    assert int8 is not None and "0.9980 to the reference for texts run one at a time" in int8


def test_a_backend_equally_right_both_ways_is_not_named() -> None:
    assert padding_cause(PROBE.copy(), PROBE.copy(), PROBE) is None
    # float noise of its own on either side (an FP16 backend): no gap to explain
    assert padding_cause(_at_cosine(PROBE, 0.9999, seed=5), _at_cosine(PROBE, 0.9999, seed=6),
                         PROBE) is None


def test_a_backend_wrong_both_ways_drifts_and_is_not_named() -> None:
    """Wrong one at a time as much as batched: the drift is the backend's, not the padding's."""
    assert padding_cause(_at_cosine(PROBE, 0.9, seed=7), _at_cosine(PROBE, 0.9, seed=8),
                         PROBE) is None
    # a little worse padded, but wrong alone already: the padding does not explain the failure
    assert padding_cause(_at_cosine(PROBE, 0.8, seed=9), _at_cosine(PROBE, 0.9, seed=10),
                         PROBE) is None


def test_no_probe_texts_name_no_padding_cause() -> None:
    empty = np.empty((0, 16))
    assert padding_cause(empty, empty, empty) is None
