"""What a search repo adds beside `pytest --quantgate`: its own texts, with thresholds per test."""

from __future__ import annotations

import pytest

NEAR_DUPLICATES = [
    "Central bank raises interest rates to curb inflation",
    "Central bank lifts rates again as inflation persists",
    "Striker scores twice as champions win the derby",
    "Champions win the derby after striker's double",
]


@pytest.mark.quantgate(min_cosine=0.9, max_low_cosine_share=0.0, neighbour_overlap=0.5)
def test_paraphrases_keep_their_vectors(quantgate, quantgate_backend):
    """Each text's vector stays close to the reference's, and each finds among the others the
    neighbour the reference finds."""
    quantgate.check(NEAR_DUPLICATES)
