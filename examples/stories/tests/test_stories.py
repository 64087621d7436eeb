"""What an LM repo adds beside `pytest --quantgate`: its own prompts, with thresholds per test."""

from __future__ import annotations

import pytest

PROMPTS = [
    "The baker opened the shop at six and",
    "On Monday the council voted to",
    "She looked at the map, then",
]


@pytest.mark.quantgate(ppl_delta=0.01, top1_agreement=0.9, topk_overlap=0.8,
                       max_abs_logit=0.5, mean_abs_logit=0.1, kl_div=0.01)
def test_prompts_keep_their_perplexity(quantgate, quantgate_backend):
    """Each prompt is scored as a document: perplexity within 1% of the reference's, and the
    next token after it within the logit thresholds."""
    quantgate.check(PROMPTS)


def test_reference_continues_a_prompt(quantgate_reference):
    token, prob = quantgate_reference.top_k(PROMPTS[0], 1)[0]
    assert prob > 0.05, (token, prob)
