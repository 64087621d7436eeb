"""Unit tests of thresholds.py: keyword validation, defaults per precision, resolution order."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from pytest_quantgate.backends.base import PRECISIONS
from pytest_quantgate.checks import builtin_checks
from pytest_quantgate.errors import ConfigError
from pytest_quantgate.thresholds import DEFAULTS, KEYS, SCALED, resolve, validate

CHECKS = builtin_checks("text-classification")

WHERE = "marker quantgate"


def rejects(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(values, WHERE)


# -- defaults -----------------------------------------------------------------------------------

def test_every_precision_has_every_key() -> None:
    assert set(DEFAULTS) == set(PRECISIONS)
    for precision, values in DEFAULTS.items():
        assert set(values) == set(KEYS), precision


@pytest.mark.parametrize("precision", PRECISIONS)
def test_defaults_pass_their_own_validation(precision: str) -> None:
    assert validate(DEFAULTS[precision], precision) == DEFAULTS[precision]


def test_lower_precisions_are_looser() -> None:
    order = ("fp32", "fp16", "bf16", "int8")
    for name, key in KEYS.items():
        if key.op == "param":
            continue
        series = [DEFAULTS[p][name] for p in order]
        assert series == sorted(series, reverse=key.op == ">="), name


def test_keys_belong_to_known_checks() -> None:
    import pytest_quantgate.adversarial.specs  # noqa: F401  (registers the adversarial check)
    import pytest_quantgate.inspect.specs  # noqa: F401  (registers the diagnostic checks)
    from pytest_quantgate.checks import EXTRA_CHECKS

    assert {k.check for k in KEYS.values()} <= {*CHECKS, *builtin_checks("causal-lm"),
                                                *builtin_checks("embeddings"), *EXTRA_CHECKS}
    assert {"determinism", "int8-coverage", "calibration"} <= {k.check for k in KEYS.values()}
    assert all(k.op in ("<=", ">=", "param") for k in KEYS.values())
    assert all(k.help for k in KEYS.values())


# -- validate -----------------------------------------------------------------------------------

def test_validate_converts_types() -> None:
    out = validate({"max_abs_logit": 1, "topk": 2, "top1_agreement": 0.5}, WHERE)
    assert out == {"max_abs_logit": 1.0, "topk": 2, "top1_agreement": 0.5}
    assert type(out["max_abs_logit"]) is float
    assert type(out["topk"]) is int


def test_validate_accepts_an_integral_float_for_topk() -> None:
    out = validate({"topk": 3.0}, WHERE)
    assert out == {"topk": 3} and type(out["topk"]) is int


def test_validate_empty() -> None:
    assert validate({}, WHERE) == {}


def test_unknown_keyword_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"max_abs": 0.1}, WHERE)
    text = str(info.value)
    assert text.startswith(f"{WHERE}: threshold keyword: got 'max_abs', expected one of [")
    assert text.endswith("; fix the spelling")
    assert all(repr(name) in text for name in KEYS)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("max_abs_logit", "0.1", "threshold max_abs_logit: got '0.1', expected a number; "
     "write e.g. max_abs_logit=0.05"),
    ("max_abs_logit", None, "threshold max_abs_logit: got None, expected a number"),
    ("max_abs_logit", True, "threshold max_abs_logit: got True, expected a number"),
    ("topk", False, "threshold topk: got False, expected a whole number; write e.g. topk=3"),
    ("topk", 2.5, "threshold topk: got 2.5, expected a whole number; write e.g. topk=3"),
    ("topk", "3", "threshold topk: got '3', expected a whole number"),
    ("kl_div", [0.1], "threshold kl_div: got [0.1], expected a number; write e.g. kl_div=0.001"),
])
def test_type_errors(name: str, value: Any, message: str) -> None:
    rejects({name: value}, f"{WHERE}: {message}")


@pytest.mark.parametrize(("name", "value", "bounds"), [
    ("top1_agreement", 1.5, "in [0.0, 1.0]"),
    ("top1_agreement", -0.1, "in [0.0, 1.0]"),
    ("topk_overlap", 2, "in [0.0, 1.0]"),
    ("accuracy_delta", 1.01, "in [0.0, 1.0]"),
    ("f1_delta", -0.5, "in [0.0, 1.0]"),
    ("max_abs_logit", -1.0, ">= 0.0"),
    ("kl_div", -1e-9, ">= 0.0"),
    ("topk", 0, ">= 1"),
])
def test_range_errors(name: str, value: Any, bounds: str) -> None:
    rejects({name: value}, f"{WHERE}: threshold {name}: got {value!r}, expected a value "
            f"{bounds}; write e.g. {name}={DEFAULTS['fp16'][name]!r}")


@pytest.mark.parametrize(("name", "value"), [
    ("top1_agreement", 0.0), ("top1_agreement", 1.0), ("max_abs_logit", 0.0), ("topk", 1),
    ("max_abs_logit", math.inf),  # "no limit" is allowed
])
def test_range_ends_are_allowed(name: str, value: float) -> None:
    assert validate({name: value}, WHERE) == {name: value}


@pytest.mark.parametrize("name", ["max_abs_logit", "top1_agreement"])
def test_nan_is_rejected(name: str) -> None:
    rejects({name: math.nan}, f"{WHERE}: threshold {name}: got nan")


# -- resolve ------------------------------------------------------------------------------------

def test_resolve_defaults_only() -> None:
    for precision in PRECISIONS:
        values = resolve("anything", precision, {})
        assert values == DEFAULTS[precision]
        assert values is not DEFAULTS[precision]


def test_resolve_does_not_mutate_the_defaults() -> None:
    before = dict(DEFAULTS["int8"])
    resolve("onnx-int8-static", "int8", {"*": {"topk": 5}}, {"kl_div": 9.0})
    assert DEFAULTS["int8"] == before


def test_resolve_order() -> None:
    tables = {
        "onnx-int8-static": {"max_abs_logit": 4.0},  # exact: wins over every glob, even later ones
        "*-int8-*": {"max_abs_logit": 3.0, "kl_div": 0.5, "topk": 2},
        "onnx-*": {"kl_div": 0.7, "top1_agreement": 0.9},  # later glob beats earlier glob
        "torch-*": {"f1_delta": 0.5},  # does not match
    }
    values = resolve("onnx-int8-static", "int8", tables, {"top1_agreement": 0.8})
    assert values["max_abs_logit"] == 4.0
    assert values["kl_div"] == 0.7
    assert values["topk"] == 2
    assert values["top1_agreement"] == 0.8  # the marker beats every table
    assert values["f1_delta"] == DEFAULTS["int8"]["f1_delta"]
    assert values["mean_abs_logit"] == DEFAULTS["int8"]["mean_abs_logit"]
    assert set(values) == set(KEYS)


def test_scaled_defaults_are_multiples_of_the_logit_scale() -> None:
    # the same precision on a model whose logits are 5x larger gets 5x larger logit limits
    for precision in PRECISIONS:
        small = resolve("b", precision, {}, scale=1.0)
        large = resolve("b", precision, {}, scale=5.0)
        for key, factor in SCALED[precision].items():
            if key == "tie_margin":  # in units of the scale: the same number on both
                assert small[key] == large[key] == factor
            else:
                assert small[key] == pytest.approx(factor)
                assert large[key] == pytest.approx(5.0 * factor)
        assert large["logit_scale"] == 5.0
        assert large["kl_div"] == DEFAULTS[precision]["kl_div"]  # probabilities: not scaled


def test_a_limit_the_user_writes_is_absolute_logits() -> None:
    values = resolve("onnx-int8-static", "int8", {"*-int8-*": {"max_abs_logit": 0.5}}, scale=5.0)
    assert values["max_abs_logit"] == 0.5
    assert values["mean_abs_logit"] == pytest.approx(5.0 * SCALED["int8"]["mean_abs_logit"])
    assert resolve("b", "fp16", {}, {"mean_abs_logit": 0.2}, scale=5.0)["mean_abs_logit"] == 0.2


@pytest.mark.parametrize("scale", [None, 0.0, float("nan"), float("inf")])
def test_no_usable_scale_keeps_the_absolute_defaults(scale: float | None) -> None:
    assert resolve("b", "int8", {}, scale=scale) == DEFAULTS["int8"]


def test_scaled_limits_are_looser_at_lower_precisions() -> None:
    order = ("fp32", "fp16", "bf16", "int8")
    for key in SCALED["fp32"]:
        series = [SCALED[p][key] for p in order]
        assert series == sorted(series), key


def test_resolve_glob_is_case_sensitive() -> None:
    assert resolve("onnx-fp16", "fp16", {"ONNX-*": {"kl_div": 1.0}}) == DEFAULTS["fp16"]


def test_resolve_overrides_none() -> None:
    assert resolve("x", "fp32", {}, None) == DEFAULTS["fp32"]
