"""Pruning of the cache: entries no run has used for ``cache_max_age_days`` are removed.

Every artifact key is the hash of what it was built from, so a model change leaves the old
entries where no run reads them again (an export of a base-size model: 100-450 MB, plus its
fp16 and int8 variants). cache.py stamps an entry on every use (``mark_used``); here its last
use is read back, and a session's end (plugin/finish.py) removes the stale ones. Nothing here
imports pytest.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .atomic import locked, temp_sibling
from .cache import META, USED, remove_dead_builds, used_in_this_process

log = logging.getLogger(__name__)

DAY = 86_400.0
# What an entry's folder is called (hash_parts(...)[:24]): anything else in the layout (a lock, a
# temporary directory, a file or folder someone put there) is not an entry and is left alone.
KEY = re.compile(r"[0-9a-f]{24}")
def last_used(entry: Path) -> float:
    """When ``entry`` was last built or loaded (seconds since the epoch): the mtime of its
    newest file. That is its ``USED`` stamp once it has been loaded (refreshed on every use);
    before, the file its build wrote last (the metadata, the reference's run.json), which dates
    an entry not loaded since its build or written before stamps existed.

    Not the folder's own mtime: an archive restored without folder times (a CI cache as zip)
    would make every entry look used at each restore, and nothing would ever be pruned. An
    archive that keeps file times keeps the stamps; one that resets them makes entries look
    used now, which only delays pruning.
    """
    newest: float | None = None
    try:
        with os.scandir(entry) as found:
            for item in found:
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    newest = info.st_mtime if newest is None else max(newest, info.st_mtime)
        if newest is None:  # no file at all: what else could date it
            newest = os.stat(entry, follow_symlinks=False).st_mtime
    except OSError:
        return time.time()  # unreadable: never old enough to remove
    return newest


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path``, symbolic links not followed (nor counted)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                info = os.stat(os.path.join(folder, name), follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def _is_dir(path: Path) -> bool:
    """A real directory: a symbolic link to one is not (pruning never follows one out)."""
    try:
        return stat.S_ISDIR(os.stat(path, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _exists(path: Path) -> bool:
    try:
        os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return True


def _subdirs(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as found:
            return sorted(Path(e.path) for e in found if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def cache_entries(cache_dir: Path) -> Iterator[tuple[Path, list[Path]]]:
    """The cache's own layout: each folder that holds entries, with its entries.

    ``artifacts/<kind>/<key>/`` holding the artifact metadata or a use stamp (an ArtifactCache
    entry, adversarial corpora included, and TensorRT's engine folder
    ``artifacts/onnx-trt-engines/<key>/``, which onnx_gpu stamps whenever it hands it to
    TensorRT), and ``reference/<key>/`` (only reference_dir writes there). Nothing else is an
    entry: a folder without either file, other plugins' folders (``benchmarks/``,
    ``hypothesis-storage/``, ``hypothesis/``), locks, stray files; and no symbolic link below
    ``cache_dir`` is followed (``cache_dir`` itself may be one: it is what the user chose).
    """
    root = Path(cache_dir)
    folders: list[tuple[Path, bool]] = []
    if _is_dir(root / "artifacts"):
        folders += [(kind, True) for kind in _subdirs(root / "artifacts")]
    if _is_dir(root / "reference"):
        folders.append((root / "reference", False))
    for folder, marked in folders:
        entries = [p for p in _subdirs(folder) if KEY.fullmatch(p.name)
                   and (not marked or _exists(p / META) or _exists(p / USED))]
        yield folder, entries


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` removed: the entries' former paths and their files' bytes."""

    removed: tuple[Path, ...] = ()
    size_bytes: int = 0

    def line(self, max_age_days: int) -> str:
        """The one line a session prints when it removed something."""
        count = len(self.removed)
        entries = "entry" if count == 1 else "entries"
        days = "day" if max_age_days == 1 else "days"
        return (f"quantgate cache: removed {count} {entries} unused for {max_age_days} {days} "
                f"({human_size(self.size_bytes)})")


def human_size(size: int) -> str:
    if size >= 10**9:
        return f"{size / 1e9:.1f} GB"
    if size >= 10**6:
        return f"{size / 1e6:.0f} MB"
    if size >= 10**3:
        return f"{size / 1e3:.0f} kB"
    return f"{size} bytes"


def prune(cache_dir: Path, max_age_days: int, *, now: float | None = None) -> Pruned:
    """Remove the cache entries of ``cache_dir`` not used for more than ``max_age_days`` days
    (0 or less: remove nothing). Never raises for what it meets on disk; details are logged.

    Kept: an entry this process used (``mark_used``), one whose stamp is recent, and one whose
    lock another process holds (building it, or running the reference pass into it: the lock is
    taken without waiting). Under the lock the stamp is read again, then the entry is renamed to
    a temporary name in its folder and only then deleted, so an interrupted prune leaves the key
    absent (the next use rebuilds it), never half an entry that loads; the temporary directory
    is removed later, by a build or a prune in that folder, as a killed build's is.

    A load takes no lock (a warm run finds its artifacts in microseconds), but it stamps the
    entry before reading it: a prune that looks at the stamp after that keeps the entry, and
    one that renamed the entry away before makes the load miss and rebuild (behind the lock).
    Only a load that stamps and reads between the prune's second look and its rename
    (microseconds, on an entry unused for ``max_age_days``) would find its files gone later.
    """
    if max_age_days <= 0:
        return Pruned()
    cutoff = (time.time() if now is None else now) - max_age_days * DAY
    removed: list[Path] = []
    size = 0
    for folder, entries in cache_entries(cache_dir):
        for dead in remove_dead_builds(folder):
            log.info("quantgate cache: removed %s (the temporary directory of a killed build "
                     "or prune)", dead)
        for entry in entries:
            if used_in_this_process(entry) or last_used(entry) >= cutoff:
                continue
            freed = _remove(entry, cutoff)
            if freed is not None:
                removed.append(entry)
                size += freed
    return Pruned(tuple(removed), size)


def _remove(entry: Path, cutoff: float) -> int | None:
    """Remove one stale entry under its lock; its bytes, or None when it was kept."""
    try:
        with locked(entry.with_name(entry.name + ".lock"), wait=False) as held:
            if not held:
                log.info("quantgate cache: kept %s: another process holds its lock", entry)
                return None
            used = last_used(entry)  # again, under the lock: a run may have used it since
            if used >= cutoff:
                return None
            doomed = temp_sibling(entry, hidden=False)  # <key>.tmp-<pid>-<hex>, as orphans are
            os.rename(entry, doomed)
    except OSError as exc:  # a file open on Windows, a folder not ours to write: keep it
        log.warning("quantgate cache: could not remove %s: %s", entry,
                    exc.strerror or type(exc).__name__)
        return None
    size = tree_size(doomed)
    try:
        shutil.rmtree(doomed)
    except OSError as exc:
        log.warning("quantgate cache: removed %s from the cache but not all of its files (%s); "
                    "a later run deletes %s", entry, exc.strerror or type(exc).__name__, doomed)
        return 0
    log.info("quantgate cache: removed %s (%s, last used %s)", entry, human_size(size),
             time.strftime("%Y-%m-%d %H:%M", time.localtime(used)))
    return size
