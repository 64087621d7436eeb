"""A reference at chance accuracy is named (run_record.chance_line, reference_warning): agreement
with a reference that is right no more often than a guess measures noise."""

from __future__ import annotations

import math

import pytest

from pytest_quantgate.run_record import chance_line, reference_warning

TAIL = ("its head is untrained or the eval labels do not match its id2label; agreement with it "
        "measures noise")


def test_an_untrained_head_on_nine_labels_is_named() -> None:
    assert chance_line("torch-fp32", 0.134, 600, 9) == (
        f"reference 'torch-fp32' accuracy 0.134 on 600 inputs is at chance (1 of 9 labels = "
        f"0.111): {TAIL}")


@pytest.mark.parametrize(("accuracy", "n", "labels"), [
    (0.9, 600, 9),  # a trained model
    (0.7, 600, 3),  # well above 1.5 x chance, and the interval clear of it
    (0.8, 45, 3),
    (0.7, 1000, 2),  # a poor binary classifier, not one at chance
])
def test_a_reference_clearly_above_chance_says_nothing(accuracy: float, n: int,
                                                       labels: int) -> None:
    assert chance_line("ref", accuracy, n, labels) is None


@pytest.mark.parametrize(("accuracy", "n", "labels", "why"), [
    (0.42, 10_000, 3, "interval clear of chance, but at most 0.1 above it"),
    (0.16, 10_000, 9, "interval clear of chance, but at most 1.5 x chance"),
    (0.6, 10, 3, "above 1.5 x chance, but 10 inputs cannot tell it from chance"),
    (0.356, 45, 3, "the fake project's random reference"),
])
def test_not_clearly_above_chance_is_at_chance(accuracy: float, n: int, labels: int,
                                               why: str) -> None:
    line = chance_line("ref", accuracy, n, labels)
    assert line is not None and " is at chance " in line, why


def test_far_below_chance_says_below() -> None:
    line = chance_line("ref", 0.1, 100, 2)  # labels swapped against id2label
    assert line == f"reference 'ref' accuracy 0.100 on 100 inputs is below chance (1 of 2 " \
                   f"labels = 0.500): {TAIL}"


@pytest.mark.parametrize(("n", "labels"), [(0, 3), (10, 1), (10, 0)])
def test_nothing_to_judge_says_nothing(n: int, labels: int) -> None:
    assert chance_line("ref", 0.0, n, labels) is None


def test_the_backend_with_the_most_finite_rows_speaks_for_the_reference() -> None:
    poisoned = {"n_inputs": 45.0, "nonfinite_rows": 11.0, "reference_accuracy": 0.38235}
    same = {"n_inputs": 45.0, "nonfinite_rows": 0.0, "reference_accuracy": 0.35556}
    for order in ([poisoned, same], [same, poisoned]):
        line = reference_warning("ref", order, 3)
        assert line is not None and "accuracy 0.356 on 45 inputs" in line


def test_no_labels_or_no_finite_rows_say_nothing() -> None:
    assert reference_warning("ref", [{"n_inputs": 45.0, "nonfinite_rows": 0.0}], 3) is None
    assert reference_warning("ref", [], 3) is None
    assert reference_warning("ref", [{"n_inputs": 4.0, "reference_accuracy": math.nan}], 3) is None
