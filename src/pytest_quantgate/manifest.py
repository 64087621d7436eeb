"""What a run measured on: versions, commit, machine and the hashes of the model and data.

A report is only comparable with a baseline taken under the same conditions. INT8 results
depend on the CPU (the same dynamic-INT8 file drifts four times further on an AVX2-only CPU
without VNNI), on the execution provider and on library versions, so the manifest records them
and ``compare_manifests`` says, one line each, what differs.

Nothing here imports the heavy libraries it reports on: versions come from package metadata.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .cache import hash_path

MANIFEST_VERSION = 1

# Distributions whose versions can change the numbers. ONNX Runtime ships under several
# distribution names (the GPU build is "onnxruntime-gpu"); whichever is installed is recorded.
PACKAGES: tuple[str, ...] = (
    "numpy", "torch", "transformers", "tokenizers", "onnx",
    "onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml",
    "tensorrt", "pytest", "hypothesis",
)

# Instruction-set extensions that decide which INT8 kernels a CPU runs.
INT8_FLAGS: tuple[str, ...] = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile")
VNNI_FLAGS: frozenset[str] = frozenset({"avx512_vnni", "avx_vnni"})

_GIT_TIMEOUT_S = 5.0
_EMPTY: Mapping[str, object] = MappingProxyType({})


def quantgate_version() -> str:
    try:
        return metadata.version("pytest-quantgate")
    except metadata.PackageNotFoundError:
        return "unknown"  # running from a source tree without an install


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # absent packages are left out, not recorded as None
    return found


@functools.cache
def package_versions() -> dict[str, str]:
    """Versions of the installed packages in ``PACKAGES``, read without importing them."""
    return _versions(PACKAGES)


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """CPU model name and INT8-relevant flags from the text of ``/proc/cpuinfo``.

    ``cpu_flags`` lists the flags of ``INT8_FLAGS`` that are present; it and ``vnni`` are None
    when the text has no ``flags`` line (not Linux x86), so "unknown" never reads as "absent".
    """
    cpu: str | None = None
    flags: set[str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "model name" and cpu is None:
            cpu = value.strip() or None
        elif key == "flags" and flags is None:
            flags = set(value.split())  # the first processor speaks for all of them
    if flags is None:
        return {"cpu": cpu, "cpu_flags": None, "vnni": None}
    return {
        "cpu": cpu,
        "cpu_flags": [f for f in INT8_FLAGS if f in flags],
        "vnni": bool(flags & VNNI_FLAGS),
    }


@functools.cache
def _cpuinfo_text() -> str:
    """``/proc/cpuinfo``, read once per process (the manifest and the header both use it)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""  # macOS, Windows: no cpuinfo, so the flags stay unknown


@functools.cache
def cpu_flags() -> dict[str, Any]:
    """``parse_cpuinfo`` of this machine; the CPU name falls back to ``platform.processor``."""
    info = parse_cpuinfo(_cpuinfo_text())
    if info["cpu"] is None:
        info["cpu"] = platform.processor() or None
    return info


def parse_cpu_family(text: str) -> tuple[str | None, str | None]:
    """``cpu family`` and ``model`` of the first processor in ``/proc/cpuinfo`` text: a model
    name such as "AMD EPYC" can hide several microarchitectures, with different INT8 kernels."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in ("cpu family", "model") and key not in found:
            found[key] = value.strip()
        if len(found) == 2:
            break
    return found.get("cpu family") or None, found.get("model") or None


def isa_line(info: Mapping[str, Any], family: str | None = None, model: str | None = None) -> str:
    """One line on the CPU's INT8-relevant instruction sets (``cpu_flags``-shaped ``info``),
    for the run's header: a baseline taken on another CPU may differ for that reason alone."""
    cpu = info.get("cpu") or "unknown"
    if family is not None and model is not None:
        cpu = f"{cpu} (family {family} model {model})"
    why = "INT8 results differ between CPUs with and without VNNI"
    flags = info.get("cpu_flags")
    if flags is None:
        return f"CPU {cpu}: instruction sets unknown (no x86 flags in /proc/cpuinfo here); {why}"
    have = set(flags)
    sets = (("AVX2", {"avx2"}), ("AVX-512", {"avx512f"}), ("VNNI", set(VNNI_FLAGS)),
            ("AMX", {"amx_int8"}))
    listed = ", ".join(f"{name} {'yes' if have & wanted else 'no'}" for name, wanted in sets)
    return f"CPU {cpu}: {listed} ({why})"


def cpu_isa_line() -> str:
    """``isa_line`` of this machine, from the cpuinfo the manifest read."""
    return isa_line(cpu_flags(), *parse_cpu_family(_cpuinfo_text()))


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None  # git missing, or hung on a network filesystem
    return done.stdout if done.returncode == 0 else None


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the repository holding ``cwd``; None for what is unknown.

    Dirty means modified tracked files: untracked files (reports, caches) are ignored, or
    every run that writes a report into the repository would read as dirty.
    """
    where = Path.cwd() if cwd is None else Path(cwd)
    head = _git(["rev-parse", "HEAD"], where)
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return {
        "commit": head.strip() if head else None,
        "dirty": bool(status.strip()) if status is not None else None,
    }


def machine() -> dict[str, Any]:
    try:
        usable: int | None = len(os.sched_getaffinity(0))  # what a container actually grants
    except (AttributeError, OSError):
        usable = None
    return {"hostname": platform.node(), "cores": os.cpu_count(), "usable_cores": usable,
            **cpu_flags()}


def build_manifest(
    *,
    model_dir: Path | None,
    data_files: Mapping[str, Path],
    extra: Mapping[str, object] = _EMPTY,
) -> dict[str, Any]:
    """The manifest of this run, as plain JSON-ready values.

    ``extra`` carries what only the caller knows, such as ``execution_providers``;
    ``compare_manifests`` reads that key. A missing model or data path raises ``DataError``.
    """
    return {
        "manifest_version": MANIFEST_VERSION,
        "quantgate": quantgate_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": dict(package_versions()),
        "git": git_state(),
        "machine": machine(),
        "model_sha256": hash_path(model_dir) if model_dir is not None else None,
        "data_sha256": {name: hash_path(path) for name, path in sorted(data_files.items())},
        "extra": dict(extra),
    }


def _get(manifest: Mapping[str, Any], *keys: str) -> Any:
    """Nested lookup that tolerates older manifests lacking a key."""
    value: Any = manifest
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _show(value: Any, shorten: bool = False) -> str:
    if value is None:
        return "absent"
    return str(value)[:12] if shorten else str(value)  # 12 hex digits tell hashes apart


def compare_manifests(
    a: Mapping[str, Any], b: Mapping[str, Any], *, names: tuple[str, str] = ("baseline", "current")
) -> list[str]:
    """Differences that make comparing a run ``b`` with ``a`` questionable, one line each.

    An empty list means the two ran under the same recorded conditions. The git commit is
    not compared: a different commit is what a comparison across commits is for.
    """
    na, nb = names
    lines: list[str] = []

    def differs(label: str, va: Any, vb: Any, why: str = "", shorten: bool = False) -> None:
        if va != vb:
            suffix = f" ({why})" if why else ""
            lines.append(f"{label}: {na} {_show(va, shorten)}, {nb} {_show(vb, shorten)}{suffix}")

    flags_a, flags_b = _get(a, "machine", "cpu_flags"), _get(b, "machine", "cpu_flags")
    if flags_a is not None and flags_b is not None and set(flags_a) != set(flags_b):
        only_a = ", ".join(f for f in INT8_FLAGS if f in set(flags_a) - set(flags_b)) or "none"
        only_b = ", ".join(f for f in INT8_FLAGS if f in set(flags_b) - set(flags_a)) or "none"
        lines.append(f"CPU instruction sets differ: only {na} has {only_a}, only {nb} has "
                     f"{only_b} (INT8 kernels and their results depend on them)")
    vnni_a, vnni_b = _get(a, "machine", "vnni"), _get(b, "machine", "vnni")
    if vnni_a is not None and vnni_b is not None and vnni_a != vnni_b:
        lines.append(f"VNNI: {na} {'has' if vnni_a else 'lacks'} it, {nb} "
                     f"{'has' if vnni_b else 'lacks'} it (signed INT8 weights can saturate "
                     "without VNNI; reduce_range=True or QUInt8 weights avoid it)")
    differs("CPU", _get(a, "machine", "cpu"), _get(b, "machine", "cpu"),
            "latency is not comparable")
    differs("execution providers", _get(a, "extra", "execution_providers"),
            _get(b, "extra", "execution_providers"))

    packages_a = _get(a, "packages") or {}
    packages_b = _get(b, "packages") or {}
    for name in sorted(set(packages_a) | set(packages_b)):
        differs(f"{name} version", packages_a.get(name), packages_b.get(name))
    differs("python version", _get(a, "python"), _get(b, "python"))
    differs("pytest-quantgate version", _get(a, "quantgate"), _get(b, "quantgate"),
            "metric definitions may have changed")

    differs("model sha256", _get(a, "model_sha256"), _get(b, "model_sha256"),
            "a different model", shorten=True)
    data_a = _get(a, "data_sha256") or {}
    data_b = _get(b, "data_sha256") or {}
    for name in sorted(set(data_a) | set(data_b)):
        differs(f"data {name!r} sha256", data_a.get(name), data_b.get(name),
                "different inputs", shorten=True)
    return lines
