"""One way to write a file so readers never see half of it, and one cross-process lock.

A write goes to a temporary sibling named ``.<name>.tmp-<pid>-<random>`` and is renamed into
place (``os.replace`` is atomic on every OS we run on). A run killed between the two leaves the
temporary file behind; the next write of the same name removes the ones whose process is gone.
The lock is ``filelock``'s (it works on every OS, unlike ``fcntl``): parallel workers of one
machine (pytest-xdist) take it around a build or the reference pass, so each is done once.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP = ".tmp-"


def temp_sibling(path: Path, *, hidden: bool = True) -> Path:
    """A fresh temporary name next to ``path`` that ``remove_orphans`` recognises."""
    name = f".{path.name}" if hidden else path.name
    return path.with_name(f"{name}{TMP}{os.getpid()}-{secrets.token_hex(3)}")


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path.parent, f".{path.name}{TMP}")
    tmp = temp_sibling(path)
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or we cannot tell: leave its file alone
    return True


def remove_orphans(folder: Path, prefix: str) -> list[Path]:
    """Remove the temporary files and directories under ``folder`` named ``prefix<pid>-...``
    whose process no longer runs (a killed run's); returns what was removed."""
    removed: list[Path] = []
    try:
        entries = [p for p in Path(folder).iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextmanager
def locked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the cross-process lock ``path`` (created if absent) for the block; yields True.
    With ``wait=False`` a lock another process holds is not waited for: the block runs
    without it and the value is False (a clean-up that may skip what is in use)."""
    from filelock import FileLock, Timeout

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
