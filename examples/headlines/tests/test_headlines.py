"""What a model repo adds beside `pytest --quantgate`: its own checks, with thresholds per test."""

from __future__ import annotations

import pytest

NHS = "Cybersecurity breach exposes NHS patient records"


@pytest.mark.quantgate(max_abs_logit=2.5, topk=3, topk_overlap=0.66)
def test_nhs_headline_keeps_its_label(quantgate):
    """The headline whose label a broken TensorRT engine flipped (health 0.94 -> World 0.998)."""
    quantgate.check(NHS, expect="health")


@pytest.mark.quantgate(top1_agreement=0.95, max_abs_logit=3.0, mean_abs_logit=0.5, kl_div=0.1,
                       topk_overlap=0.8)
def test_every_backend_agrees_on_hard_headlines(quantgate, quantgate_backend):
    quantgate.check([
        NHS,
        "Hospital ransomware attack delays cancer treatment",
        "Regulators fine bank over climate disclosure failures",
        "Striker signs record deal as club shares jump 12%",
        "Teachers strike over AI tools in exam marking",
    ])


def test_reference_is_confident_on_the_nhs_headline(quantgate_reference):
    label, prob = quantgate_reference.top_k(NHS, 1)[0]
    assert label == "health" and prob > 0.5
