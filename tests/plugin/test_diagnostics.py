"""Diagnostic items on the fake backend: each wiring fault is named as the cause."""

from __future__ import annotations

FAULT_BACKENDS = """
[[tool.quantgate.backend]]
name = "raw-int32"
kind = "fake"
raw_int32 = true

[[tool.quantgate.backend]]
name = "cast-int32"
kind = "fake"
input_dtype = "int32"

[[tool.quantgate.backend]]
name = "permuted"
kind = "fake"
label_permutation = [1, 2, 0]

[[tool.quantgate.backend]]
name = "dropout"
kind = "fake"
dropout = 0.3
"""


def faults() -> str:
    return """
[[tool.quantgate.backend]]
name = "ref"
kind = "fake"

[[tool.quantgate.backend]]
name = "same"
kind = "fake"

[[tool.quantgate.backend]]
name = "swapped"
kind = "fake"
swap_inputs = true
""" + FAULT_BACKENDS


def test_contract_names_each_wiring_fault(project):
    pytester = project('backends = ["same", "swapped", "raw-int32", "permuted", "cast-int32"]',
                       backends_toml=faults())
    result = pytester.runpytest("--quantgate", "-v", "-k", "contract")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines_random([
        "*quantgate::same::contract PASSED*",
        "*quantgate::cast-int32::contract PASSED*",
        "*quantgate::swapped::contract failed: inputs 'attention_mask' and 'token_type_ids' are "
        "swapped*(probe of * golden inputs: top-1 agreement * as fed, 1.000 with the fault undone)",
        "*quantgate::raw-int32::contract failed: int64 token ids are read as int32 bytes (a "
        "raw-buffer path that skips the cast*",
        "*quantgate::permuted::contract failed: the label order is permuted: column 0 holds "
        "'Sports' (id2label says 'World')*",
    ])


def test_determinism_catches_dropout_left_on(project):
    pytester = project('backends = ["same", "dropout"]', backends_toml=faults())
    result = pytester.runpytest("--quantgate", "-v", "-k", "determinism")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*quantgate::same::determinism PASSED*",
        "*quantgate::dropout::determinism failed: the backend is not deterministic: the same * "
        "inputs twice differ by up to * (on */* rows); dropout left on at export*",
    ])


def test_a_failing_logits_item_names_the_cause_found_by_contract(project):
    pytester = project('backends = ["raw-int32"]', backends_toml=faults())
    result = pytester.runpytest("--quantgate", "-k", "logits")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*quantgate::raw-int32::logits failed: max_abs_logit *",
        "  cause: int64 token ids are read as int32 bytes (a raw-buffer path *(contract check)",
    ])


def test_swapped_inputs_are_named_without_padding_too(project):
    """Every eval text of the same length: the probe's batch has no pad positions, so the
    backend's swapped attention_mask carries only zeros (issue 19: with and without padding)."""
    import json

    pytester = project('backends = ["swapped"]', backends_toml=faults())
    words = ["match", "goal", "team", "market", "bank", "war"]
    rows = [{"text": " ".join(words[(i + j) % 6] for j in range(4)), "label": "Sports"}
            for i in range(30)]
    (pytester.path / "data" / "golden.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n")
    result = pytester.runpytest("--quantgate", "-v", "-k", "contract")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*quantgate::swapped::contract failed: inputs 'attention_mask' and 'token_type_ids' are "
        "swapped*(probe of * golden inputs: top-1 agreement * as fed, 1.000 with the fault "
        "undone)",
    ])
