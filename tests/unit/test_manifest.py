"""Unit tests of the run manifest: cpuinfo parsing, versions, git state, hashes, comparison."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_quantgate import manifest as mf
from pytest_quantgate.cache import hash_path
from pytest_quantgate.errors import DataError

SAPPHIRE_RAPIDS = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2
"""

ZEN2 = """\
processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse2 avx avx2 fma
"""

ARM = """\
processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp
CPU implementer\t: 0x41
"""


# --- cpuinfo ------------------------------------------------------------------------------------

def test_parse_cpuinfo_intel_with_amx() -> None:
    info = mf.parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert info == {
        "cpu": "Intel(R) Xeon(R) Platinum 8480+",
        "cpu_flags": ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile"],
        "vnni": True,
    }


def test_parse_cpuinfo_avx2_only_has_no_vnni() -> None:
    assert mf.parse_cpuinfo(ZEN2) == {"cpu": "AMD EPYC 7B12", "cpu_flags": ["avx2"],
                                      "vnni": False}


def test_parse_cpuinfo_avx_vnni_alone_counts() -> None:
    info = mf.parse_cpuinfo("flags : avx2 avx_vnni\n")
    assert info == {"cpu": None, "cpu_flags": ["avx2", "avx_vnni"], "vnni": True}


@pytest.mark.parametrize("text", [ARM, "", "garbage without colons\n"])
def test_parse_cpuinfo_unknown_flags_are_none(text: str) -> None:
    assert mf.parse_cpuinfo(text) == {"cpu": None, "cpu_flags": None, "vnni": None}


def test_cpu_flags_is_cached_and_shaped() -> None:
    info = mf.cpu_flags()
    assert info is mf.cpu_flags()
    assert set(info) == {"cpu", "cpu_flags", "vnni"}
    if info["cpu_flags"] is not None:
        assert set(info["cpu_flags"]) <= set(mf.INT8_FLAGS)
        assert isinstance(info["vnni"], bool)


# --- versions -----------------------------------------------------------------------------------

def test_package_versions_reads_metadata() -> None:
    versions = mf.package_versions()
    assert versions is mf.package_versions()
    assert versions["numpy"] == np.__version__
    assert versions["pytest"] == pytest.__version__
    assert set(versions) <= set(mf.PACKAGES)


def test_missing_packages_are_absent() -> None:
    assert mf._versions(("numpy", "no-such-distribution-quantgate")) == {"numpy": np.__version__}


def test_package_versions_import_nothing() -> None:
    code = ("import sys; import pytest_quantgate.manifest as m; m.package_versions(); "
            "print(sorted({'torch', 'transformers', 'onnxruntime', 'onnx'} & set(sys.modules)))")
    src = Path(mf.__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(src)}, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_quantgate_version_unknown_when_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mf.metadata, "version", missing)
    assert mf.quantgate_version() == "unknown"


# --- git ----------------------------------------------------------------------------------------

@pytest.fixture
def outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory git will not search above, so an enclosing repository cannot leak in."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(work)
    return work


def test_git_state_outside_a_repo(outside_git: Path) -> None:
    assert mf.git_state() == {"commit": None, "dirty": None}


def test_git_state_without_git(outside_git: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(outside_git))  # an empty directory: no git on PATH
    assert mf.git_state() == {"commit": None, "dirty": None}


def test_git_state_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(*args: Any, **kwargs: Any) -> Any:
        assert kwargs["timeout"] == 5.0
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(mf.subprocess, "run", hang)
    assert mf.git_state() == {"commit": None, "dirty": None}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_in_a_repo(outside_git: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                               "-c", "commit.gpgsign=false", *args], cwd=outside_git,
                              capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    (outside_git / "model.txt").write_text("v1\n")
    git("add", "model.txt")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")
    assert mf.git_state() == {"commit": head, "dirty": False}
    (outside_git / "report.json").write_text("{}")  # untracked: not dirty
    assert mf.git_state(outside_git)["dirty"] is False
    (outside_git / "model.txt").write_text("v2\n")
    assert mf.git_state(outside_git) == {"commit": head, "dirty": True}


# --- build_manifest -----------------------------------------------------------------------------

def test_build_manifest(outside_git: Path) -> None:
    model = outside_git / "model"
    model.mkdir()
    (model / "config.json").write_text('{"a": 1}')
    data = outside_git / "golden.jsonl"
    data.write_text('{"text": "x", "label": "y"}\n')
    got = mf.build_manifest(model_dir=model, data_files={"eval": data},
                            extra={"execution_providers": ["CPUExecutionProvider"]})
    assert got["manifest_version"] == mf.MANIFEST_VERSION
    assert got["python"] == ".".join(map(str, sys.version_info[:3]))
    assert got["packages"] == mf.package_versions()
    assert got["git"] == {"commit": None, "dirty": None}
    assert got["model_sha256"] == hash_path(model)
    assert got["data_sha256"] == {"eval": hash_path(data)}
    assert got["extra"] == {"execution_providers": ["CPUExecutionProvider"]}
    assert set(got["machine"]) == {"hostname", "cores", "usable_cores", "cpu", "cpu_flags", "vnni"}
    assert isinstance(got["quantgate"], str) and got["platform"]
    assert json.loads(json.dumps(got)) == got  # plain JSON values only


def test_build_manifest_without_model(outside_git: Path) -> None:
    got = mf.build_manifest(model_dir=None, data_files={})
    assert got["model_sha256"] is None and got["data_sha256"] == {} and got["extra"] == {}


def test_build_manifest_missing_data(outside_git: Path) -> None:
    with pytest.raises(DataError, match=r"^path to hash: got '.*nope\.jsonl', expected an "
                                        r"existing file or directory; check the configured path"):
        mf.build_manifest(model_dir=None, data_files={"eval": outside_git / "nope.jsonl"})


# --- compare_manifests --------------------------------------------------------------------------

def _manifest(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "manifest_version": 1, "quantgate": "0.1.0", "python": "3.11.7", "platform": "Linux",
        "packages": {"numpy": "2.1.0", "onnxruntime": "1.20.0"},
        "git": {"commit": "a" * 40, "dirty": False},
        "machine": {"hostname": "h", "cores": 8, "usable_cores": 8, "cpu": "Xeon",
                    "cpu_flags": ["avx2", "avx512f", "avx512_vnni"], "vnni": True},
        "model_sha256": "1" * 64, "data_sha256": {"eval": "2" * 64},
        "extra": {"execution_providers": ["CPUExecutionProvider"]},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def test_compare_same_conditions_is_empty() -> None:
    other = _manifest(git={"commit": "b" * 40, "dirty": True}, machine={"hostname": "other"})
    assert mf.compare_manifests(_manifest(), other) == []


def test_compare_cpu_without_vnni() -> None:
    zen2 = _manifest(machine={"cpu": "AMD EPYC 7B12", "cpu_flags": ["avx2"], "vnni": False})
    assert mf.compare_manifests(_manifest(), zen2) == [
        "CPU instruction sets differ: only baseline has avx512f, avx512_vnni, only current has "
        "none (INT8 kernels and their results depend on them)",
        "VNNI: baseline has it, current lacks it (signed INT8 weights can saturate without VNNI; "
        "reduce_range=True or QUInt8 weights avoid it)",
        "CPU: baseline Xeon, current AMD EPYC 7B12 (latency is not comparable)",
    ]


def test_compare_unknown_flags_are_not_a_difference() -> None:
    arm = _manifest(machine={"cpu_flags": None, "vnni": None})
    assert mf.compare_manifests(_manifest(), arm) == []


def test_compare_versions_providers_and_hashes() -> None:
    b = _manifest(extra={"execution_providers": ["CUDAExecutionProvider"]}, model_sha256="3" * 64)
    b["packages"] = {"numpy": "2.2.0", "onnxruntime-gpu": "1.20.0"}  # replaced, not merged
    b["data_sha256"] = {"calibration": "4" * 64}
    assert mf.compare_manifests(_manifest(), b, names=("main", "pr")) == [
        "execution providers: main ['CPUExecutionProvider'], pr ['CUDAExecutionProvider']",
        "numpy version: main 2.1.0, pr 2.2.0",
        "onnxruntime version: main 1.20.0, pr absent",
        "onnxruntime-gpu version: main absent, pr 1.20.0",
        "model sha256: main 111111111111, pr 333333333333 (a different model)",
        "data 'calibration' sha256: main absent, pr 444444444444 (different inputs)",
        "data 'eval' sha256: main 222222222222, pr absent (different inputs)",
    ]


def test_compare_python_and_quantgate_versions() -> None:
    b = _manifest(python="3.12.1", quantgate="0.2.0")
    assert mf.compare_manifests(_manifest(), b) == [
        "python version: baseline 3.11.7, current 3.12.1",
        "pytest-quantgate version: baseline 0.1.0, current 0.2.0 (metric definitions may "
        "have changed)",
    ]


def test_compare_tolerates_older_manifests() -> None:
    lines = mf.compare_manifests({"manifest_version": 0}, _manifest())
    assert "CPU: baseline absent, current Xeon (latency is not comparable)" in lines
    assert "numpy version: baseline absent, current 2.1.0" in lines


# --- the header's CPU line ----------------------------------------------------------------------

def test_isa_line_names_each_instruction_set() -> None:
    text = SAPPHIRE_RAPIDS.replace("vendor_id", "cpu family\t: 6\nmodel\t\t: 143\nvendor_id", 1)
    assert mf.parse_cpu_family(text) == ("6", "143")
    assert mf.isa_line(mf.parse_cpuinfo(text), *mf.parse_cpu_family(text)) == (
        "CPU Intel(R) Xeon(R) Platinum 8480+ (family 6 model 143): AVX2 yes, AVX-512 yes, "
        "VNNI yes, AMX yes (INT8 results differ between CPUs with and without VNNI)")
    assert mf.isa_line(mf.parse_cpuinfo(ZEN2), *mf.parse_cpu_family(ZEN2)) == (
        "CPU AMD EPYC 7B12: AVX2 yes, AVX-512 no, VNNI no, AMX no (INT8 results differ between "
        "CPUs with and without VNNI)")


def test_isa_line_without_flags_says_unknown_not_no() -> None:
    assert mf.isa_line(mf.parse_cpuinfo(ARM)) == (
        "CPU unknown: instruction sets unknown (no x86 flags in /proc/cpuinfo here); INT8 "
        "results differ between CPUs with and without VNNI")


def test_cpu_isa_line_is_this_machines() -> None:
    assert mf.cpu_isa_line().startswith(f"CPU {mf.cpu_flags()['cpu'] or 'unknown'}")
