"""What the start-up check reads from config.json beyond the labels (preflight.py)."""

from __future__ import annotations

import pytest

from pytest_quantgate.tasks.base import head_problem, too_long


@pytest.mark.parametrize(("architectures", "task", "flagged"), [
    (["BertForSequenceClassification"], "text-classification", False),
    (["GPT2LMHeadModel"], "causal-lm", False),
    (["LlamaForCausalLM"], "causal-lm", False),
    (["BertForMaskedLM"], "text-classification", True),
    (["BertForSequenceClassification"], "causal-lm", True),
    (["GPT2LMHeadModel"], "text-classification", True),
    (["MyHeadlineClassifier"], "text-classification", False),  # a custom class says nothing
    ([], "text-classification", False),
])
def test_a_model_saved_with_another_tasks_head_is_named(architectures: list[str], task: str,
                                                        flagged: bool) -> None:
    assert bool(head_problem(architectures, task)) is flagged


def test_an_input_longer_than_the_models_positions_is_named() -> None:
    assert too_long("window", 128, 1024) == []
    assert too_long("window", 128, None) == []  # the config does not say: nothing to judge
    assert too_long("window", 2048, 1024) == [
        "window: got 2048, expected at most the model's 1024 positions (config.json); set "
        "window = 1024 or less"]
