"""The package's metadata: every optional import has an extra, ``all`` brings every CPU feature,
and a missing optional package is one line that names its extra.

Building and installing the wheel is ``make package`` (.ci/wheel_smoke.py), not a test here: it
takes a fresh virtual environment and about ten seconds.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]

# Module imported by the code -> (distribution that provides it, the extra users install).
OPTIONAL = {
    "torch": ("torch", "torch"), "transformers": ("transformers", "torch"),
    "onnx": ("onnx", "onnx"), "onnxruntime": ("onnxruntime", "onnx"),
    "hypothesis": ("hypothesis", "adversarial"), "scipy": ("scipy", "latency"),
    "xdist": ("pytest-xdist", "xdist"), "tensorrt": ("tensorrt", "tensorrt"),
}
# Used through a pytest plugin's fixture, never imported by name.
PLUGINS = {"pytest_benchmark": ("pytest-benchmark", "latency")}
CORE = {"pytest": "pytest", "numpy": "numpy", "tokenizers": "tokenizers",
        "filelock": "filelock", "tomli": "tomli"}


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def expanded(extra: str) -> set[str]:
    """The distributions an extra brings, following ``pytest-quantgate[...]`` self-references."""
    out: set[str] = set()
    for req in EXTRAS[extra]:
        inner = re.fullmatch(r"pytest-quantgate\[([\w,]+)\]", req)
        out |= set().union(*map(expanded, inner.group(1).split(","))) if inner else names([req])
    return out


def third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "pytest_quantgate").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "pytest_quantgate"}


def test_every_third_party_import_is_a_dependency_or_has_an_extra():
    core = names(PROJECT["dependencies"])
    for module in sorted(third_party_imports()):
        if module in CORE:
            assert CORE[module] in core, module
            continue
        assert module in OPTIONAL, (f"{module} is imported but is neither a dependency nor "
                                    "mapped to an extra in this test: add it to an extra")
        dist, extra = OPTIONAL[module]
        assert dist in expanded(extra), (module, extra)


@pytest.mark.parametrize("module", sorted({**OPTIONAL, **PLUGINS}))
def test_all_brings_every_cpu_feature(module):
    dist, extra = {**OPTIONAL, **PLUGINS}[module]
    assert dist in expanded(extra)
    if extra not in ("tensorrt",):  # TensorRT is a GPU feature: gpu and tensorrt are opt-in
        assert dist in expanded("all"), (module, extra)


def test_the_feature_extras_bring_what_the_features_need():
    assert expanded("adversarial") == {"hypothesis"}
    assert expanded("latency") == {"pytest-benchmark", "scipy"}
    assert {"torch", "transformers"} <= expanded("torch")
    assert "onnxruntime-gpu" not in expanded("all")  # it conflicts with onnxruntime


def test_dev_brings_everything_and_the_packaging_tools():
    assert expanded("all") | {"build", "twine", "pyyaml", "playwright"} <= expanded("dev")


def test_the_wheel_ships_its_type_marker_and_the_pytest_entry_point():
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["pytest_quantgate"]
    assert (ROOT / "src" / "pytest_quantgate" / "py.typed").is_file()
    assert PROJECT["entry-points"]["pytest11"] == {"quantgate": "pytest_quantgate.plugin"}
    assert PROJECT["scripts"] == {"quantgate": "pytest_quantgate.cli:main"}


NO_SCIPY = ("comparing latency with a baseline: got 'no scipy installed', expected scipy (its "
            "Mann-Whitney U and Welch tests judge a slowdown); pip install "
            "'pytest-quantgate[latency]'")


def test_comparing_latency_without_scipy_is_one_line_naming_the_extra(monkeypatch):
    from pytest_quantgate.compare import judge
    from pytest_quantgate.errors import ConfigError

    monkeypatch.setitem(sys.modules, "scipy", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "scipy.stats", raising=False)
    for ask in (judge.require_scipy, judge.scipy_stats):
        with pytest.raises(ConfigError) as err:
            ask()
        assert str(err.value) == NO_SCIPY
