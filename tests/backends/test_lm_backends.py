"""The causal-LM task on a real (tiny) GPT-2: every LM kind's runner, then `pytest --quantgate`.

The tiny LM (``fixtures.build_demo.build_lm(size="tiny")``: 1 layer, 66k parameters, a 1536-token
byte-level BPE) is trained once and kept under ``.quantgate-test-cache/lm-tiny`` (its stamp
skips retraining). Runners come from a ``GateSession`` of task ``causal-lm``, so they are built
with the context the plugin gives them (input_ids/attention_mask, max_length = window,
calibration windows of the calibration corpus), in a fresh artifact cache per module.

The pytester runs are in-process, so the frameworks are imported out here first: a module
first imported inside an in-process run is dropped after it, and numpy/torch cannot be
imported twice.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

for _module in ("torch", "transformers", "onnxruntime", "onnx", "tokenizers"):
    pytest.importorskip(_module)

import onnx  # noqa: E402
import onnxruntime  # noqa: E402,F401
import onnxruntime.quantization  # noqa: E402,F401
import torch  # noqa: E402,F401
import transformers  # noqa: E402,F401

import pytest_quantgate.backends.onnx_quantize  # noqa: E402,F401
import pytest_quantgate.backends.onnx_runner  # noqa: E402,F401
import pytest_quantgate.backends.torch_runner  # noqa: E402,F401
import pytest_quantgate.checker  # noqa: E402,F401
import pytest_quantgate.inspect.determinism  # noqa: E402,F401
import pytest_quantgate.inspect.int8_coverage  # noqa: E402,F401
import pytest_quantgate.inspect.lm_contract  # noqa: E402,F401
import pytest_quantgate.run_record  # noqa: E402,F401
import pytest_quantgate.session  # noqa: E402,F401
import pytest_quantgate.tasks.lm_gate  # noqa: E402,F401
from pytest_quantgate import config as qconfig  # noqa: E402
from pytest_quantgate.backends import registry  # noqa: E402
from pytest_quantgate.backends.base import Runner  # noqa: E402
from pytest_quantgate.session import GateSession  # noqa: E402
from pytest_quantgate.tasks.causal_lm import run_pass  # noqa: E402
from pytest_quantgate.tasks.lm_windows import Window, iter_windows, make_lm_feed  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LM_CACHE = ROOT / ".quantgate-test-cache" / "lm-tiny"
WINDOW, STRIDE, BATCH = 32, 16, 16
USER_ONNX = "user-onnx"  # the "onnx" kind, fed the fp32 export as a user's file
KINDS = [k for k in registry.LM_KINDS if k != "onnx"] + [USER_ONNX]
BUILT_KINDS = [k for k in KINDS if k not in ("torch-fp32", USER_ONNX)]  # have an artifact
LM_INPUTS = ("input_ids", "attention_mask")
# Relative perplexity change vs torch-fp32 a working runner stays within (loose: this suite
# checks that a runner works, the gate checks how well). Measured on the tiny LM, window 32:
# fp32 < 1e-8, fp16/bf16 < 4e-5, int8 1.3e-4 (torch dynamic) to 4.3e-4 (ORT static).
PPL_RTOL = {"fp32": 1e-4, "fp16": 0.01, "bf16": 0.01, "int8": 0.05}
# Right-padding a row must not move its real positions' logits beyond rounding. A batch of
# another shape may take another kernel (another summation order), so float kinds are allowed a
# few units in the last place at the logits' magnitude, not a fixed figure: bf16 measured 0 on
# one AMD EPYC, 0.0156 on an Intel Xeon with AMX and 0.03125 on an AMD EPYC (Zen 4, AVX-512
# BF16): one bf16 step at |logit| in [2, 4) and [4, 8). A padding bug moves logits by whole
# units. INT8 *dynamic* kinds quantise activations with one range per batch, and pad positions'
# activations widen it: measured 0.23 (torch-int8-dynamic) and 0.086 (onnx-int8-dynamic).
MANTISSA_BITS = {"fp32": 23, "fp16": 10, "bf16": 7}
PAD_ULPS = 4
PAD_ATOL_INT8 = 0.5


def ulp(precision: str, magnitude: float) -> float:
    """One unit in the last place of ``precision`` at ``magnitude`` (normal numbers)."""
    exponent = math.floor(math.log2(max(magnitude, 2.0 ** -14)))
    return 2.0 ** (exponent - MANTISSA_BITS[precision])


def pad_tolerance(precision: str, logits: np.ndarray) -> float:
    if precision == "int8":
        return PAD_ATOL_INT8
    return PAD_ULPS * ulp(precision, float(np.abs(logits).max()))
CORRUPTED = "mlp.c_proj.weight"  # as examples/stories/make_user_export.py: last block's MLP out
PROMPTS = ["The baker opened the shop at six and", "On Monday the council voted to",
           "She looked at the map, then"]


# -- the tiny LM and one GateSession over it ----------------------------------------------------
@pytest.fixture(scope="module")
def lm() -> Any:
    from fixtures.build_demo import build_lm

    from pytest_quantgate.backends.onnx_export import load_model

    built = build_lm(LM_CACHE, size="tiny")
    # loading the model imports torch modules that register operators: out here, once, so an
    # in-process pytester run that loads the reference (the contract probe) does not re-import
    load_model(Path(built.model_dir), "causal-lm")
    return built


def lm_table(lm: Any, **extra: Any) -> dict[str, Any]:
    """The [tool.quantgate] table of a causal-LM project on the tiny model (absolute paths)."""
    return {"task": "causal-lm", "model": str(Path(lm.model_dir).resolve()),
            "eval": str(Path(lm.eval).resolve()),
            "calibration": str(Path(lm.calibration).resolve()), "window": WINDOW,
            "stride": STRIDE, "batch_size": BATCH, **extra}


@dataclass
class Kinds:
    """Every LM kind's runner, built once per module through the gate's own build context."""

    gate: GateSession
    extra: dict[str, Runner] = field(default_factory=dict)  # the user's file
    ppl: dict[str, float] = field(default_factory=dict)

    def user_decl(self) -> registry.BackendDecl:
        export: Any = self.get("onnx-fp32")  # an OnnxRunner: its file is the fp32 export
        return registry.declare(USER_ONNX, "onnx", {"path": str(export.model_file)},
                                "lm conformance")

    def get(self, kind: str) -> Runner:
        if kind == USER_ONNX:
            if kind not in self.extra:
                runner = registry.create_runner(self.user_decl(), self.gate.context())
                self.extra[kind] = runner.activate()
            return self.extra[kind]
        return self.gate.runner(kind)

    def create(self, kind: str) -> Runner:
        """A fresh, inactive runner (built or loaded from the cache)."""
        decl = self.user_decl() if kind == USER_ONNX else self.gate.config.decl(kind)
        return registry.create_runner(decl, self.gate.context())

    def perplexity(self, kind: str) -> float:
        if kind not in self.ppl:
            tally = run_pass(self.get(kind), self.gate.task.source(), window=WINDOW,
                             stride=STRIDE, batch_size=BATCH, k=3)
            assert tally.nonfinite == 0 and tally.docs > 0
            self.ppl[kind] = tally.ppl
        return self.ppl[kind]


@pytest.fixture(scope="module")
def kinds(lm: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kinds]:
    base = tmp_path_factory.mktemp("lm-conformance")
    cfg = qconfig.load(lm_table(lm, cache_dir=str(base / "cache")), base_dir=base, cli={},
                       cli_dir=base, source="lm conformance")
    assert set(cfg.backends) == set(BUILT_KINDS)
    state = Kinds(GateSession(cfg))
    yield state
    for runner in state.extra.values():
        runner.close()
    state.gate.close()


@pytest.fixture(scope="module")
def windows(kinds: Kinds) -> list[Window]:
    """The first windows of the eval corpus: some full (WINDOW tokens), some shorter."""
    found = []
    for w in iter_windows(kinds.gate.task.source(), WINDOW, STRIDE):
        found.append(w)
        if len(found) == 24:
            break
    lengths = {len(w.ids) for w in found}
    assert WINDOW in lengths and min(lengths) < WINDOW - 4
    return found


def feed_of(rows: list[np.ndarray], pad_id: int) -> dict[str, np.ndarray]:
    return make_lm_feed([Window(0, r, 0, True) for r in rows], pad_id)


# -- conformance over every LM kind -------------------------------------------------------------
def test_build_context_is_the_causal_lm_one(kinds: Kinds) -> None:
    ctx = kinds.gate.context()
    assert (ctx.task, ctx.input_names, ctx.max_length) == ("causal-lm", LM_INPUTS, WINDOW)
    assert ctx.vocab_size == 1536 and ctx.calibration_hash is not None
    feeds = list(ctx.calibration_batches())
    assert feeds and all(set(f) == set(LM_INPUTS) for f in feeds)
    assert all(f["input_ids"].dtype == np.int64 and 0 < f["input_ids"].shape[1] <= WINDOW
               for f in feeds)
    assert sum(len(f["input_ids"]) for f in feeds) > 100  # 100 documents, some of two windows


@pytest.mark.parametrize("kind", KINDS)
def test_declares_int64_token_inputs_and_describes(kinds: Kinds, kind: str) -> None:
    runner = kinds.get(kind)
    specs = runner.input_specs()
    assert tuple(specs) == LM_INPUTS
    for spec in specs.values():
        assert spec.dtype == "int64" and len(spec.shape) == 2, spec
    info = runner.describe()
    assert info.size_bytes and info.size_bytes > 0 and info.runtime


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("length", [7, WINDOW])
def test_logits_are_batch_sequence_vocab(kinds: Kinds, windows: list[Window], kind: str,
                                         batch: int, length: int) -> None:
    full = [w.ids for w in windows if len(w.ids) == WINDOW]
    feed = feed_of([ids[:length] for ids in full[:batch]], kinds.gate.encoder.pad_id)
    logits = kinds.get(kind).infer(feed)["logits"]
    assert logits.shape == (batch, length, 1536)
    assert logits.dtype in (np.float32, np.float64) and np.isfinite(logits).all()


@pytest.mark.parametrize("kind", KINDS)
def test_right_padding_leaves_real_positions_alone(kinds: Kinds, windows: list[Window],
                                                   kind: str) -> None:
    runner = kinds.get(kind)
    pad = kinds.gate.encoder.pad_id
    rows = [windows[0].ids, min((w.ids for w in windows), key=len), windows[1].ids[:11]]
    assert len({len(r) for r in rows}) == 3  # two of the three rows are padded
    together = runner.infer(feed_of(rows, pad))["logits"]
    worst = 0.0
    for i, ids in enumerate(rows):
        alone = runner.infer(feed_of([ids], pad))["logits"][0]
        worst = max(worst, float(np.abs(alone - together[i, :len(ids)]).max()))
    allowed = pad_tolerance(runner.precision, together)
    assert worst <= allowed, f"{kind}: max |logit diff| {worst:.3g} > {allowed:.3g}"


@pytest.mark.parametrize("kind", BUILT_KINDS)
def test_second_build_hits_the_cache(kinds: Kinds, kind: str) -> None:
    first = kinds.get(kind).describe()
    assert first.cache_hit is False  # this module's cache started empty
    again = kinds.create(kind).describe()
    assert again.cache_hit is True and again.artifact == first.artifact
    assert again.build_seconds == pytest.approx(first.build_seconds)


@pytest.mark.parametrize("kind", KINDS)
def test_perplexity_close_to_torch_fp32(kinds: Kinds, kind: str) -> None:
    ref = kinds.perplexity("torch-fp32")
    assert 20 < ref < 200  # the tiny LM learned something (uniform would be 1536)
    got = kinds.perplexity(kind)
    change = got / ref - 1
    assert abs(change) <= PPL_RTOL[kinds.get(kind).precision], \
        f"{kind}: perplexity {got:.5g} vs {ref:.5g} ({change:+.3e})"


def test_torch_int8_dynamic_linearises_conv1d(kinds: Kinds) -> None:
    details = kinds.get("torch-int8-dynamic").describe().details
    # 1 block: c_attn, c_proj, c_fc, mlp.c_proj are Conv1D; the tied lm_head is a Linear
    assert details["conv1d_as_linear"] == 4
    assert details["quantized_linear"] >= details["conv1d_as_linear"]
    assert details["float_linear"] == 0


def test_onnx_int8_static_quantises_gemm(kinds: Kinds) -> None:
    from pytest_quantgate.inspect.int8_coverage import onnx_counts

    runner = kinds.get("onnx-int8-static")
    ops = runner.describe().details["op_types"]
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0 and ops["Gemm"] > 0
    integer, floating = onnx_counts(str(runner.model_file))  # type: ignore[attr-defined]
    # GPT-2's Conv1D exports as Gemm: the LM default (MatMul + Gemm) puts every one in Q/DQ
    assert integer["Gemm (Q/DQ)"] == ops["Gemm"] and "Gemm" not in floating
    assert integer["MatMul (Q/DQ)"] > 0


# -- `pytest --quantgate` as users run it -------------------------------------------------------
@pytest.fixture(scope="module")
def e2e_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for every pytester run here: exports are built once, the reference reused."""
    return tmp_path_factory.mktemp("lm-e2e-cache")


@pytest.fixture(scope="module")
def corrupted_export(lm: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny LM exported for task causal-lm, then one weight's sign flipped."""
    from onnx import numpy_helper

    from pytest_quantgate.backends.onnx_export import export_model

    out = tmp_path_factory.mktemp("user") / "broken.onnx"
    export_model(Path(lm.model_dir), out, exporter="legacy", opset=17, input_names=LM_INPUTS,
                 max_length=WINDOW, task="causal-lm")
    proto = onnx.load(str(out))
    names = [i.name for i in proto.graph.initializer if i.name.endswith(CORRUPTED)]
    assert names, f"no initializer *{CORRUPTED}"
    for init in proto.graph.initializer:
        if init.name == names[-1]:
            init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(proto, str(out))
    return out


@pytest.fixture(scope="module")
def miswired_exports(lm: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny LM exported with its two inputs swapped, and with a static sequence length of
    half the window (issue 19: the contract names both)."""
    from pytest_quantgate.backends.onnx_export import export_model

    folder = tmp_path_factory.mktemp("miswired")
    swapped, static = folder / "swapped.onnx", folder / "static.onnx"
    export_model(Path(lm.model_dir), swapped, exporter="legacy", opset=17,
                 input_names=LM_INPUTS, max_length=WINDOW, task="causal-lm",
                 swap_names=("attention_mask", "input_ids"))
    export_model(Path(lm.model_dir), static, exporter="legacy", opset=17, input_names=LM_INPUTS,
                 max_length=WINDOW, task="causal-lm")
    proto = onnx.load(str(static))
    for value in proto.graph.input:
        value.type.tensor_type.shape.dim[1].dim_value = WINDOW // 2
    onnx.save(proto, str(static))
    return {"swapped": swapped, "static": static}


def _toml(value: Any) -> str:
    return json.dumps(value)  # strings, numbers and lists of strings read the same in TOML


def _project(pytester: pytest.Pytester, lm: Any, cache: Path, backends: list[str],
             declared: str = "", **extra: Any) -> None:
    table = lm_table(lm, cache_dir=str(cache), backends=backends, adversarial_max_examples=0,
                     **extra)
    lines = ["[tool.quantgate]", *(f"{k} = {_toml(v)}" for k, v in table.items())]
    pytester.makepyprojecttoml("\n".join(lines) + "\n" + declared)


def _user_broken(path: Path) -> str:
    return (f'[[tool.quantgate.backend]]\nname = "user-broken"\nkind = "onnx"\n'
            f'path = "{path}"\nprecision = "fp32"\n')


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    """nodeid -> outcome of every item that ran."""
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return {r.nodeid: r.outcome for r in reports if r.when == "call"}


def test_gate_passes_fp32_and_int8_dynamic_and_reuses_the_reference(
        pytester: pytest.Pytester, lm: Any, e2e_cache: Path) -> None:
    _project(pytester, lm, e2e_cache, ["onnx-fp32", "onnx-int8-dynamic"])
    args = ("--quantgate", "-p", "no:cacheprovider", "--quantgate-json", "r.json")
    result = pytester.runpytest(*args)
    outcomes = _outcomes(result)
    assert outcomes == {
        **{f"quantgate::onnx-fp32::{c}": "passed"
           for c in ("ppl", "next-token", "contract", "determinism")},
        **{f"quantgate::onnx-int8-dynamic::{c}": "passed"
           for c in ("ppl", "next-token", "contract", "determinism", "int8-coverage")},
    }, result.stdout.str()
    result.stdout.fnmatch_lines([
        f"reference torch-fp32 on 260 documents (* tokens scored, window {WINDOW}, stride "
        f"{STRIDE}, perplexity *) of eval.txt (outputs computed in * s and cached)*",
        "backend *prec *size MB *build s *ppl *ppl Δ *next top-1 *top-k *final max|Δ|*",
        "onnx-fp32 *fp32 *PASS",
        "onnx-int8-dynamic *int8 *PASS",
    ])
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["config"]["task"] == "causal-lm"
    assert (report["config"]["window"], report["config"]["stride"]) == (WINDOW, STRIDE)
    ref_ppl = report["reference"]["lm"]["ppl"]
    fp32 = report["backends"]["onnx-fp32"]["metrics"]
    int8 = report["backends"]["onnx-int8-dynamic"]["metrics"]
    assert fp32["reference_ppl"] == pytest.approx(ref_ppl)
    assert fp32["ppl"] == pytest.approx(ref_ppl, rel=1e-6) and abs(fp32["ppl_delta"]) < 1e-6
    # INT8 rounding may move perplexity either way: its sign differs between CPUs (VNNI or not)
    assert abs(int8["ppl_delta"]) < 0.02 and int8["ppl"] != ref_ppl
    assert report["reference"]["timing"]["reference_cached"] is False

    again = pytester.runpytest(*args)
    again.assert_outcomes(passed=9)
    again.stdout.fnmatch_lines(["reference torch-fp32 on 260 documents * (outputs loaded from "
                                "the cache, not recomputed)*"])
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["reference"]["timing"]["reference_cached"] is True
    assert report["reference"]["lm"]["ppl"] == pytest.approx(ref_ppl)
    assert report["backends"]["onnx-fp32"]["metrics"]["ppl"] == pytest.approx(fp32["ppl"])


def test_corrupted_export_and_all_ops_static_int8_fail_ppl(
        pytester: pytest.Pytester, lm: Any, e2e_cache: Path, corrupted_export: Path) -> None:
    allops = ('[[tool.quantgate.backend]]\nname = "allops"\nkind = "onnx-int8-static"\n'
              'op_types = "all"\n')
    _project(pytester, lm, e2e_cache, ["user-broken", "allops"],
             _user_broken(corrupted_export) + allops)
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "--quantgate-json",
                                "r.json")
    outcomes = _outcomes(result)
    assert outcomes["quantgate::user-broken::ppl"] == "failed"
    assert outcomes["quantgate::allops::ppl"] == "failed"
    assert outcomes["quantgate::user-broken::determinism"] == "passed"
    assert outcomes["quantgate::allops::int8-coverage"] == "passed"
    result.stdout.fnmatch_lines([
        "*quantgate::user-broken::ppl failed: ppl_delta * > 0.001 over * inputs*"
        "(perplexity * (torch-fp32) -> * (user-broken), +*%, over * tokens of 260 documents)*",
        "*quantgate::allops::ppl failed: ppl_delta * > 0.02 over * inputs*"
        "(perplexity * (torch-fp32) -> * (allops), +*%*",
    ])
    text = result.stdout.str()
    line = re.search(r"perplexity ([\d.]+)\)", text)  # the reference line
    assert line is not None
    said = float(line.group(1))
    pairs = re.findall(r"perplexity ([\d.e+]+) \(torch-fp32\) -> ([\d.e+]+) \((\S+)\)", text)
    assert {p[2] for p in pairs} >= {"user-broken", "allops"}
    report = json.loads((pytester.path / "r.json").read_text())
    ref_ppl = report["reference"]["lm"]["ppl"]
    assert said == pytest.approx(ref_ppl, rel=1e-3)
    for ref_text, out_text, name in pairs:
        assert float(ref_text) == pytest.approx(ref_ppl, rel=1e-3)
        assert float(out_text) == pytest.approx(report["backends"][name]["metrics"]["ppl"],
                                                rel=1e-3)
    broken = report["backends"]["user-broken"]["metrics"]["ppl_delta"]
    every = report["backends"]["allops"]["metrics"]["ppl_delta"]
    # measured on the tiny LM (window 32): the sign flip 12835 vs 61.8 (+20656%); all-ops
    # static INT8 65.18 (+5.4%, next-token top-1 0.81), where MatMul+Gemm static INT8 is +0.04%
    assert broken > 0.5 and 0.02 < every < 0.5, (broken, every)
    assert outcomes["quantgate::allops::next-token"] == "failed"


MARKER_TESTS = f'''
import pytest

PROMPTS = {PROMPTS!r}


@pytest.mark.quantgate(ppl_delta=0.05)
def test_prompts_keep_their_perplexity(quantgate, quantgate_backend):
    quantgate.check(PROMPTS)


def test_reference_top_k(quantgate_reference):
    top = quantgate_reference.top_k(PROMPTS[0], 3)
    assert len(top) == 3
    assert all(isinstance(token, str) and 0.0 < prob <= 1.0 for token, prob in top)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert sum(p for _, p in top) <= 1.0 + 1e-6
    print("TOPK", top)
'''


def test_marker_ppl_delta_on_prompts(pytester: pytest.Pytester, lm: Any, e2e_cache: Path,
                                     corrupted_export: Path) -> None:
    _project(pytester, lm, e2e_cache, ["onnx-fp32", "user-broken"],
             _user_broken(corrupted_export))
    pytester.makepyfile(test_prompts=MARKER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "test_prompts.py")
    assert _outcomes(result) == {
        "test_prompts.py::test_prompts_keep_their_perplexity[onnx-fp32]": "passed",
        "test_prompts.py::test_prompts_keep_their_perplexity[user-broken]": "failed",
        "test_prompts.py::test_reference_top_k": "passed",
    }, result.stdout.str()
    result.stdout.fnmatch_lines([
        # token names are repr()s of the decoded tokens: "' and'"
        "*TOPK [[](\"'*'\", 0.*), (\"'*'\", 0.*), (\"'*'\", 0.*)[]]*",
        "*QuantgateCheckFailed: quantgate::user-broken::ppl failed: ppl_delta * > 0.05 over "
        "* inputs*(perplexity * (torch-fp32) -> * (user-broken)*3 documents)*",
    ])


def test_user_errors_are_one_line(pytester: pytest.Pytester, lm: Any, e2e_cache: Path,
                                  demo: Any) -> None:
    _project(pytester, lm, e2e_cache, ["onnx-fp32"])
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "--quantgate-eval",
                                "missing.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*quantgate: option --quantgate-eval: file: got '*missing.txt', "
                                 "expected an existing * file; fix the path or create the file"])
    assert "Traceback" not in result.stderr.str()

    # a sequence classifier (the tiny BERT of tests/backends/conftest.py) under task causal-lm:
    # transformers would load it as BertLMHeadModel with a random LM head; refused at start-up,
    # from its config.json, before anything is built (the loader's own check stays behind it)
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "--quantgate-model",
                                str(Path(demo.model_dir).resolve()))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("ERROR: quantgate: config.json architectures: got ['BertForSequenceClassification'], "
            "expected a model saved with the head of task 'causal-lm' (...ForCausalLM); set task "
            "to what the model was trained for, or save the model with that head (its weights "
            "would otherwise be initialised at random)") in result.stderr.lines
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_adversarial_prompts_on_a_causal_lm(pytester: pytest.Pytester, lm: Any, e2e_cache: Path,
                                            corrupted_export: Path) -> None:
    # The adversarial strategies drive LM prompts too: the property is judged on the next-token
    # logits after each generated prompt; the broken export is found and shrunk.
    _project(pytester, lm, e2e_cache, ["onnx-fp32", "user-broken"],
             _user_broken(corrupted_export))
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "-k", "adversarial",
                                "--quantgate-adversarial-max-examples", "15",
                                "--quantgate-adversarial-profile", "ci",
                                "--quantgate-adversarial-budget", "5")
    outcomes = _outcomes(result)
    assert outcomes == {"quantgate::onnx-fp32::adversarial": "passed",
                        "quantgate::user-broken::adversarial": "failed"}
    result.stdout.fnmatch_lines([
        "*quantgate::user-broken::adversarial failed: */15 generated inputs break the "
        "thresholds*minimal input after shrinking: *"])


# after the tests above: it reuses the reference they computed into the shared cache
def test_contract_names_an_lms_wiring_faults(pytester: pytest.Pytester, lm: Any, e2e_cache: Path,
                                            miswired_exports: dict[str, Path]) -> None:
    declared = "".join(f'[[tool.quantgate.backend]]\nname = "{name}"\nkind = "onnx"\n'
                       f'path = "{path}"\nprecision = "fp32"\n'
                       for name, path in miswired_exports.items())
    _project(pytester, lm, e2e_cache, ["swapped", "static"], declared)
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "-k", "contract")
    outcomes = _outcomes(result)
    assert outcomes == {"quantgate::swapped::contract": "failed",
                        "quantgate::static::contract": "failed"}, result.stdout.str()
    result.stdout.fnmatch_lines_random([
        "*quantgate::swapped::contract failed: inputs 'attention_mask' and 'input_ids' are "
        "swapped: *(probe of * windows, * positions: next-token agreement * as fed, 1.000 "
        "with the fault undone)",
        f"*quantgate::static::contract failed: input 'input_ids' has a static sequence length "
        f"of {WINDOW // 2} tokens, shorter than the window of {WINDOW}: set window = "
        f"{WINDOW // 2}*",
    ])
