"""Content-addressed store of built artifacts (exports, quantised models, reference outputs).

An artifact's key is the hash of everything that determines it: the model files, the backend's
options, the calibration data and the versions of the libraries that build it. A build writes
into a temporary directory that is renamed into place only when complete, so an interrupted run
leaves no half-written artifact; a file lock keeps parallel workers (pytest-xdist) from building
the same artifact twice.

The cache heals itself: each entry's metadata records its files (size, mtime, sha256), and an
entry found damaged on read (a truncated or deleted file, corrupt metadata) is removed and
rebuilt, the artifact saying so in its ``note``. Entries written before the record existed load
unverified. A killed build's temporary directory is removed by the next build in its folder, and
a cache directory that cannot be written is one ``DataError`` line, not a traceback.

The cache also forgets: every key is new when a model changes, so nothing would ever read the old
entries again. Each entry's use stamp (``USED``) is refreshed whenever it is loaded (until then
the build's files date it), and ``cache_pruning.prune`` removes the entries unused for longer than
``cache_max_age_days`` (the plugin calls it at the end of a session).
"""

from __future__ import annotations

import errno
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
from .progress import blocking

META = "quantgate-artifact.json"
# The entry's last use is this empty file's mtime: one utime per hit (a warm session loads its
# artifacts in microseconds; rewriting a timestamp would be a write and a rename each). Made on
# the first hit, not by the build: until then the metadata file, written last, dates the entry
# as well (cache_pruning.last_used), and the folder holds exactly what the build wrote. Never in the file
# records, so never checked as part of the artifact; a dot name, so hash_path skips it too.
USED = ".quantgate-used"


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
    """A built artifact: its directory, whether it came from the cache, what it cost, and
    ``note``: one line for the user when the cache entry was found damaged and rebuilt."""

    path: Path
    key: str
    hit: bool
    build_seconds: float
    size_bytes: int
    note: str = ""


def file_records(folder: Path) -> dict[str, dict[str, Any]]:
    """Per file under ``folder`` (the metadata file excepted): size, mtime and sha256."""
    records: dict[str, dict[str, Any]] = {}
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        if file.parent == folder and file.name == META:
            continue
        stat = file.stat()
        records[file.relative_to(folder).as_posix()] = {
            "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": hash_path(file)}
    return records


def damage(folder: Path, records: Mapping[str, Any]) -> str:
    """What is wrong with the files of an entry against its build's records ("" if nothing).

    Sizes are checked on every read, the sha256 only of a file whose mtime is not its build's.
    Hashing costs about 33 ms per 50 MB here (1.5 GB/s, warm page cache; a cold disk is
    slower), and a warm gate loads every artifact each session: several hundred MB for a
    base-size model's fp32/fp16/int8 set, so a full hash on each read would add most of a
    second to a run that otherwise finds its artifacts in microseconds (a stat is 2 us). Size
    and mtime catch what damages a cache in practice (a truncated copy or restore, a deleted
    file, a file rewritten in place), as git's index trusts unchanged stat data; an entry copied
    without its mtimes is hashed in full on each read and still loads.
    """
    for rel, record in records.items():
        file = folder / rel
        try:
            stat = file.stat()
            if not file.is_file():
                return f"{rel}: not a file"
            if stat.st_size != record["size"]:
                return f"{rel}: {stat.st_size} bytes, expected {record['size']}"
            if stat.st_mtime_ns != record["mtime_ns"] and hash_path(file) != record["sha256"]:
                return f"{rel}: contents changed since the build (sha256 differs)"
        except (FileNotFoundError, NotADirectoryError):
            return f"{rel}: missing"
        except OSError as exc:  # unreadable: the runtime could not load it either
            return f"{rel}: {exc.strerror or type(exc).__name__}"
    return ""


def _records_ok(records: object) -> bool:
    return isinstance(records, dict) and all(
        isinstance(r, dict) and isinstance(r.get("size"), int) and isinstance(r.get("mtime_ns"), int)
        and isinstance(r.get("sha256"), str) for r in records.values())


FIX = "point cache_dir / --quantgate-cache-dir elsewhere"


def cache_error(exc: OSError, root: Path, kind: str, what: str = "artifact cache directory",
                noun: str = "artifact") -> DataError | None:
    """The one line for an error of the cache directory itself (read-only, full, a file where
    a directory should be), or None when ``exc`` is about another path (the build's inputs)."""
    name = exc.filename
    if name is not None:
        path = Path(os.path.abspath(os.fsdecode(name)))
        top = Path(os.path.abspath(root))
        if path != top and top not in path.parents and path not in top.parents:
            return None  # e.g. an unreadable model file: the build's own error, not the cache's
    where = Path(os.fsdecode(name)).parent if name is not None else root / kind
    while TMP in where.name:  # a failed build's temporary directory is gone: name its folder
        where = where.parent
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):  # disk, quota
        return DataError(problem(f"{what} {where}", reason, f"room to write the {kind} {noun}",
                                 f"free space on its disk or {FIX}"))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DataError(problem(f"{what} {where}", reason, "a writable directory",
                                 f"make cache_dir writable or {FIX}"))
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in (root / kind, *(root / kind).parents)
                        if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return DataError(problem(f"{what} {root / kind}",
                                     f"a file at {blocker}", "a directory",
                                     f"remove that file or {FIX}"))
    return None


class ArtifactCache:
    """Artifacts under ``root/<kind>/<key>/``, each with a metadata file written last."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get_or_build(
        self, kind: str, parts: Mapping[str, Any], build: Callable[[Path], None]
    ) -> Artifact:
        """Return the artifact for ``parts``, calling ``build(tmpdir)`` only when it is absent
        or damaged. A cache directory that cannot be written raises one ``DataError`` line."""
        key = hash_parts({"kind": kind, **parts})[:24]
        final = self.root / kind / key
        # Stamped before it is read: a pruner (another process) decides under the key's lock
        # from the stamp, so either it sees this use and keeps the entry, or it has renamed the
        # entry away and the read below misses and rebuilds (prune's docstring).
        mark_used(final)
        found, _ = self._load(final, key)
        if found is not None:
            return found
        try:
            return self._build(kind, key, parts, final, build)
        except OSError as exc:
            error = cache_error(exc, self.root, kind)
            if error is None:
                raise
            raise error from exc

    def _build(self, kind: str, key: str, parts: Mapping[str, Any], final: Path,
               build: Callable[[Path], None]) -> Artifact:
        final.parent.mkdir(parents=True, exist_ok=True)
        with locked(final.with_name(key + ".lock")):
            # Checked again under the lock: another worker may have built it meanwhile, and
            # what is damaged now (not half-replaced by a build) is what the note reports.
            found, damaged = self._load(final, key)
            if found is not None:
                return found
            remove_orphans(final.parent, f"{key}{TMP}")  # a killed build's half-written dir
            remove_dead_builds(final.parent, but=key)  # other keys' killed builds
            if final.exists() or final.is_symlink():
                # Before the build, so a full disk has the damaged entry's room back.
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)
                else:
                    final.unlink()
            tmp = final.with_name(f"{key}{TMP}{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                tmp.mkdir()
                start = time.perf_counter()
                with blocking(f"building {kind}"):
                    build(tmp)
                seconds = time.perf_counter() - start
                size = dir_size(tmp)
                meta = {"kind": kind, "key": key, "parts": parts, "build_seconds": seconds,
                        "size_bytes": size, "created": time.time(), "files": file_records(tmp)}
                write_json_atomic(tmp / META, meta)
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            note = f"cache entry {kind}/{key} was damaged ({damaged}); rebuilt" if damaged else ""
            return Artifact(final, key, False, seconds, size, note)

    def _load(self, final: Path, key: str) -> tuple[Artifact | None, str]:
        """The entry at ``final`` if it is whole, else None and what is wrong with it ("" when
        there is no entry at all)."""
        try:
            text = (final / META).read_text()
        except FileNotFoundError:
            # A build renames its directory into place with the metadata already in it.
            return None, ("metadata file missing" if final.is_dir() else "")
        except NotADirectoryError:
            return None, "not a directory"
        except OSError as exc:
            return None, f"metadata unreadable: {exc.strerror or type(exc).__name__}"
        except UnicodeDecodeError:
            return None, "metadata corrupt"
        try:
            meta = json.loads(text)
            seconds, size = float(meta["build_seconds"]), int(meta["size_bytes"])
        except (ValueError, KeyError, TypeError):
            return None, "metadata corrupt"  # rebuild rather than trust it
        records = meta.get("files")
        if records is not None:  # absent: written before the records, loaded unverified
            if not _records_ok(records):
                return None, "metadata corrupt"
            wrong = damage(final, records)
            if wrong:
                return None, wrong
        return Artifact(final, key, True, seconds, size), ""


def remove_dead_builds(folder: Path, *, but: str = "") -> list[Path]:
    """Remove the temporary directories of killed builds (and of interrupted prunes) in
    ``folder``, except those of the key ``but``; returns what was removed.

    Each is a build's whole output (an export: tens of MB) and nothing else would ever
    remove it. ``remove_orphans`` keeps a directory whose process still runs; the key's lock
    is taken without waiting on top of that, so a build in progress is never touched even
    where the pid says nothing (a process of another machine sharing the cache).
    """
    removed: list[Path] = []
    try:
        keys = {p.name.split(TMP, 1)[0] for p in folder.iterdir()
                if TMP in p.name and p.is_dir()}
    except OSError:
        return removed
    for other in sorted(keys - {but}):
        try:
            with locked(folder / f"{other}.lock", wait=False) as held:
                if held:
                    removed += remove_orphans(folder, f"{other}{TMP}")
        except OSError:
            continue  # another user's lock file, say: a clean-up never fails the build
    return removed


# -- use stamps (cache_pruning.py reads them) ------------------------------------------------------

# The entries this process used, by absolute path. The stamp says the same across processes, but
# it cannot be written everywhere (a read-only entry): a serial session's own entries are kept
# whatever their stamp. Process-wide because a session's entries come from several places (the
# artifact caches, reference_cache.reference_dir).
_used_here: set[str] = set()


def mark_used(entry: Path) -> None:
    """Record that the cache entry folder ``entry`` is used now: its ``USED`` stamp's mtime is
    set (the file made if absent), and this process will not prune it.

    Never raises: an entry that does not exist yet gets no stamp (its files date it until its
    next use), and a stamp that cannot be written (a read-only cache) only leaves the entry
    looking older to pruning.
    """
    _used_here.add(os.path.abspath(entry))
    try:
        (Path(entry) / USED).touch()
    except OSError:
        pass


def used_in_this_process(entry: Path) -> bool:
    """Whether this process marked ``entry`` used (mark_used): pruning keeps it whatever its stamp."""
    return os.path.abspath(entry) in _used_here
