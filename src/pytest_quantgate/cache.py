"""Content-addressed store of built artifacts (exports, quantised models, reference outputs).

An artifact's key is the hash of everything that determines it: the model files, the backend's
options, the calibration data and the versions of the libraries that build it. A build writes
into a temporary directory that is renamed into place only when complete, so an interrupted run
leaves no half-written artifact; a file lock keeps parallel workers (pytest-xdist) from building
the same artifact twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import TMP, locked, remove_orphans, write_json_atomic
from .errors import DataError, problem

META = "quantgate-artifact.json"


def hash_path(path: Path) -> str:
    """sha256 over a file, or over a directory's relative names and contents (sorted)."""
    digest = hashlib.sha256()
    path = Path(path)
    if not path.exists():
        raise DataError(problem("path to hash", str(path), "an existing file or directory",
                                "check the configured path"))
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.relative_to(path) if file != path else Path(file.name)
        if file != path and any(part.startswith(".") for part in rel.parts):
            continue  # stamps, .git, hub download metadata: they do not change the model
        # Name and size before the bytes, so ("a", b"bc") and ("ab", b"c") differ.
        digest.update(str(rel).encode() + b"\0" + file.stat().st_size.to_bytes(8, "little"))
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def hash_parts(parts: Mapping[str, Any]) -> str:
    """sha256 of a canonical JSON rendering of the parts that determine an artifact."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def dir_size(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != META)


@dataclass(frozen=True)
class Artifact:
    """A built artifact: its directory, whether it came from the cache, and what it cost."""

    path: Path
    key: str
    hit: bool
    build_seconds: float
    size_bytes: int


class ArtifactCache:
    """Artifacts under ``root/<kind>/<key>/``, each with a metadata file written last."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get_or_build(
        self, kind: str, parts: Mapping[str, Any], build: Callable[[Path], None]
    ) -> Artifact:
        """Return the artifact for ``parts``, calling ``build(tmpdir)`` only when it is absent."""
        key = hash_parts({"kind": kind, **parts})[:24]
        final = self.root / kind / key
        found = self._load(final, key)
        if found is not None:
            return found
        final.parent.mkdir(parents=True, exist_ok=True)
        with locked(final.with_name(key + ".lock")):
            found = self._load(final, key)  # another worker may have built it meanwhile
            if found is not None:
                return found
            remove_orphans(final.parent, f"{key}{TMP}")  # a killed build's half-written dir
            tmp = final.with_name(f"{key}{TMP}{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            start = time.perf_counter()
            try:
                build(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            seconds = time.perf_counter() - start
            size = dir_size(tmp)
            meta = {"kind": kind, "key": key, "parts": parts, "build_seconds": seconds,
                    "size_bytes": size, "created": time.time()}
            write_json_atomic(tmp / META, meta)
            shutil.rmtree(final, ignore_errors=True)  # a stale dir without metadata
            os.replace(tmp, final)
            return Artifact(final, key, False, seconds, size)

    def _load(self, final: Path, key: str) -> Artifact | None:
        meta_path = final / META
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            return Artifact(final, key, True, float(meta["build_seconds"]), int(meta["size_bytes"]))
        except (ValueError, KeyError, TypeError):
            return None  # corrupt metadata: rebuild rather than trust it
