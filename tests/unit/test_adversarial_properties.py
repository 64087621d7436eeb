"""adversarial/properties.py: what a generated query of an embedder must keep."""

from __future__ import annotations

import numpy as np

from pytest_quantgate.adversarial.properties import Neighbours, unit

RNG = np.random.default_rng(1)
CORPUS = unit(RNG.normal(size=(30, 8)))


def _prop(out_corpus: np.ndarray | None = None, floor: float = 0.8) -> Neighbours:
    return Neighbours(floor, 5, CORPUS, CORPUS if out_corpus is None else unit(out_corpus),
                      [f"text {i}" for i in range(30)])


def test_a_query_that_keeps_its_vector_and_nearest_text_holds() -> None:
    queries = unit(CORPUS[:4] + 0.05 * RNG.normal(size=(4, 8)))
    assert not _prop().failing(queries, queries + 1e-6).any()


def test_a_turned_vector_fails_on_its_cosine() -> None:
    q = CORPUS[:1]
    turned = unit(q + 2.0 * RNG.normal(size=(1, 8)))
    prop = _prop(floor=0.99)
    assert prop.failing(q, turned).tolist() == [True]
    why, cosine = prop.why(q[0], turned[0])
    assert why == "cosine < 0.99:" and cosine < 0.99


def test_a_lost_nearest_text_fails_though_the_vector_is_close() -> None:
    # the backend's corpus vectors moved (a re-index): the query's nearest text is not in its
    # top 5 any more, although the query's own vector is unchanged
    q = CORPUS[:1]
    moved = CORPUS.copy()
    moved[0] = -moved[0]
    prop = _prop(moved)
    assert prop.failing(q, q).tolist() == [True]
    assert prop.why(q[0], q[0])[0] == "nearest corpus text lost from the top 5; cosine"
    assert prop.shown(q[0], True)[0] == ("text 0", 1.0)


def test_nan_vectors_fail() -> None:
    q = CORPUS[:2]
    out = q.copy()
    out[1] = np.nan
    assert _prop().failing(q, out).tolist() == [False, True]


def test_a_flat_top_k_is_a_near_tie_within_the_backends_drift() -> None:
    # the same lost nearest text, but the backend moves similarities by 1.0 on the corpus:
    # twice that exceeds any gap between the query's best and 5th match, so it is not counted
    q = CORPUS[:1]
    moved = CORPUS.copy()
    moved[0] = -moved[0]
    prop = Neighbours(0.8, 5, CORPUS, unit(moved), [f"text {i}" for i in range(30)], noise=1.0)
    assert prop.failing(q, q).tolist() == [False]


def test_similarity_drift_is_zero_for_the_same_vectors() -> None:
    from pytest_quantgate.adversarial.properties import similarity_drift

    assert similarity_drift(CORPUS, CORPUS) == 0.0
    assert similarity_drift(CORPUS, unit(CORPUS + 0.3 * RNG.normal(size=CORPUS.shape))) > 0.05
