"""The self-healing artifact cache: damaged entries are rebuilt with one note, a killed build's
temporary directory is removed by the next build, and an unwritable cache is one DataError line."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_quantgate.atomic import TMP, locked
from pytest_quantgate.cache import META, ArtifactCache
from pytest_quantgate.errors import DataError

FIX = "point cache_dir / --quantgate-cache-dir elsewhere"


class Builder:
    """A build function that counts its calls and writes a model and a details file."""

    def __init__(self, content: bytes = b"w" * 1000) -> None:
        self.calls = 0
        self.content = content

    def __call__(self, tmp: Path) -> None:
        self.calls += 1
        (tmp / "model.onnx").write_bytes(self.content)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "details.json").write_text("{}")


def leftovers(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if TMP in p.name]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def built(tmp_path: Path) -> tuple[ArtifactCache, Builder, Path]:
    cache, build = ArtifactCache(tmp_path), Builder()
    art = cache.get_or_build("onnx-export", {"model": "abc"}, build)
    assert not art.hit and art.note == "" and build.calls == 1
    return cache, build, art.path


def _again(cache: ArtifactCache, build: Builder):  # type: ignore[no-untyped-def]
    return cache.get_or_build("onnx-export", {"model": "abc"}, build)


def test_the_metadata_records_each_file(built: tuple[ArtifactCache, Builder, Path]) -> None:
    _, _, path = built
    files = json.loads((path / META).read_text())["files"]
    assert sorted(files) == ["model.onnx", "sub/details.json"]  # the metadata itself is not
    assert files["model.onnx"]["size"] == 1000
    assert re.fullmatch(r"[0-9a-f]{64}", files["model.onnx"]["sha256"])


def test_a_truncated_file_is_rebuilt_once_with_a_note_then_hits(
        built: tuple[ArtifactCache, Builder, Path]) -> None:
    cache, build, path = built
    (path / "model.onnx").write_bytes(b"w" * 10)
    art = _again(cache, build)
    assert build.calls == 2 and not art.hit
    assert art.note == (f"cache entry onnx-export/{art.key} was damaged "
                        "(model.onnx: 10 bytes, expected 1000); rebuilt")
    assert (art.path / "model.onnx").read_bytes() == build.content
    again = _again(cache, build)
    assert again.hit and again.note == "" and build.calls == 2
    assert leftovers(cache.root) == []


@pytest.mark.parametrize(("how", "why"), [
    ("unlink", "sub/details.json: missing"),
    ("folder", "sub/details.json: missing"),  # its folder is a file now
    ("dir", "sub/details.json: not a file"),
])
def test_a_deleted_file_is_rebuilt(built: tuple[ArtifactCache, Builder, Path], how: str,
                                   why: str) -> None:
    cache, build, path = built
    (path / "sub" / "details.json").unlink()
    if how == "folder":
        (path / "sub").rmdir()
        (path / "sub").write_text("")
    elif how == "dir":
        (path / "sub" / "details.json").mkdir()
    art = _again(cache, build)
    assert build.calls == 2 and not art.hit
    assert f"({why}); rebuilt" in art.note
    assert (art.path / "sub" / "details.json").is_file()


def test_changed_bytes_of_the_same_size_are_rebuilt(
        built: tuple[ArtifactCache, Builder, Path]) -> None:
    cache, build, path = built
    (path / "model.onnx").write_bytes(b"x" * 1000)  # a new mtime: the file is hashed
    art = _again(cache, build)
    assert build.calls == 2 and "model.onnx: contents changed since the build" in art.note


def test_a_touched_but_whole_file_still_hits(built: tuple[ArtifactCache, Builder, Path]) -> None:
    cache, build, path = built
    stat = (path / "model.onnx").stat()
    os.utime(path / "model.onnx", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    art = _again(cache, build)  # a copy without its mtimes: hashed, found whole
    assert art.hit and art.note == "" and build.calls == 1


def test_a_file_added_later_is_not_damage(built: tuple[ArtifactCache, Builder, Path]) -> None:
    cache, build, path = built
    (path / ".DS_Store").write_text("junk")
    assert _again(cache, build).hit and build.calls == 1


@pytest.mark.parametrize(("meta", "why"), [
    ("{not json", "metadata corrupt"),
    ('{"build_seconds": 1.0, "size_bytes": 3, "files": {"model.onnx": 3}}', "metadata corrupt"),
    (None, "metadata file missing"),
])
def test_corrupt_or_missing_metadata_is_rebuilt_with_a_note(
        built: tuple[ArtifactCache, Builder, Path], meta: str | None, why: str) -> None:
    cache, build, path = built
    if meta is None:
        (path / META).unlink()
    else:
        (path / META).write_text(meta)
    art = _again(cache, build)
    assert build.calls == 2 and art.note == (
        f"cache entry onnx-export/{art.key} was damaged ({why}); rebuilt")
    assert _again(cache, build).hit


def test_an_entry_written_before_the_records_loads_unverified(
        built: tuple[ArtifactCache, Builder, Path]) -> None:
    cache, build, path = built
    meta = json.loads((path / META).read_text())
    del meta["files"]  # the format of existing users' caches
    (path / META).write_text(json.dumps(meta))
    (path / "model.onnx").write_bytes(b"w" * 10)  # not detectable: nothing recorded
    art = _again(cache, build)
    assert art.hit and art.note == "" and build.calls == 1


# -- a killed build's temporary directory --------------------------------------------------------

def _orphan(folder: Path, key: str, pid: int) -> Path:
    orphan = folder / f"{key}{TMP}{pid}"
    orphan.mkdir(parents=True)
    (orphan / "model.onnx").write_bytes(b"half" * 1000)
    return orphan


def test_a_dead_builds_temp_dir_of_another_key_goes_with_the_next_build(tmp_path: Path) -> None:
    cache, folder = ArtifactCache(tmp_path), tmp_path / "onnx-export"
    dead = _orphan(folder, "a" * 24, _dead_pid())
    live = _orphan(folder, "b" * 24, os.getpid())  # a build in progress (this process runs)
    cache.get_or_build("onnx-export", {"model": "abc"}, Builder())
    assert not dead.exists()
    assert live.exists() and (live / "model.onnx").is_file()


def test_a_hit_removes_nothing(built: tuple[ArtifactCache, Builder, Path]) -> None:
    cache, build, path = built
    dead = _orphan(path.parent, "a" * 24, _dead_pid())
    assert _again(cache, build).hit
    assert dead.exists()  # only a build looks: a warm run does no clean-up I/O


def test_a_temp_dir_whose_key_is_locked_is_kept(tmp_path: Path) -> None:
    """A pid says nothing about a process of another machine sharing the cache; the key's lock
    held (here by this process, through another handle) keeps its directory."""
    cache, folder = ArtifactCache(tmp_path), tmp_path / "onnx-export"
    other = "c" * 24
    kept = _orphan(folder, other, _dead_pid())
    with locked(folder / f"{other}.lock"):
        cache.get_or_build("onnx-export", {"model": "abc"}, Builder())
    assert kept.exists()
    cache.get_or_build("onnx-export", {"model": "xyz"}, Builder())  # unlocked now
    assert not kept.exists()


# -- a cache directory that cannot be written ----------------------------------------------------

@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes through chmod 0o500; run as a user to test it")
def test_a_read_only_cache_directory_is_one_data_error_line(tmp_path: Path) -> None:
    root, build = tmp_path / "artifacts", Builder()
    ArtifactCache(root).get_or_build("onnx-export", {"model": "abc"}, build)
    folders = [root / "onnx-export", root]
    for folder in folders:
        folder.chmod(0o500)
    try:
        # What is built still loads (a shared read-only cache works); a build is one line.
        assert ArtifactCache(root).get_or_build("onnx-export", {"model": "abc"}, build).hit
        with pytest.raises(DataError) as info:
            ArtifactCache(root).get_or_build("onnx-fp16", {"model": "abc"}, build)
        with pytest.raises(DataError) as again:
            ArtifactCache(root).get_or_build("onnx-export", {"model": "xyz"}, build)
    finally:
        for folder in folders:
            folder.chmod(0o700)
    assert str(info.value) == (
        f"artifact cache directory {root}: got 'Permission denied', expected a writable "
        f"directory; make cache_dir writable or {FIX}")
    assert str(again.value).startswith(
        f"artifact cache directory {root / 'onnx-export'}: got 'Permission denied'")
    assert build.calls == 1


def test_a_full_disk_during_the_build_is_one_data_error_line(tmp_path: Path) -> None:
    def full(tmp: Path) -> None:
        (tmp / "model.onnx").write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / "model.onnx"))

    with pytest.raises(DataError) as info:
        ArtifactCache(tmp_path).get_or_build("onnx-export", {"model": "abc"}, full)
    assert str(info.value) == (
        f"artifact cache directory {tmp_path / 'onnx-export'}: got 'No space left on device', "
        f"expected room to write the onnx-export artifact; free space on its disk or {FIX}")
    assert "\n" not in str(info.value)
    assert leftovers(tmp_path) == []


def test_an_error_about_another_path_is_the_builds_own(tmp_path: Path) -> None:
    def unreadable(tmp: Path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/models/bert/weights.bin")

    with pytest.raises(PermissionError, match="weights.bin"):
        ArtifactCache(tmp_path / "c").get_or_build("onnx-export", {"model": "abc"}, unreadable)


@pytest.mark.parametrize("blocker", [".", "..", "onnx-export"])
def test_a_cache_path_that_is_a_file_is_one_data_error_line(tmp_path: Path, blocker: str) -> None:
    root = tmp_path / "cache" / "artifacts"
    file = (root / blocker).resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("not a directory")
    with pytest.raises(DataError) as info:
        ArtifactCache(root).get_or_build("onnx-export", {"model": "abc"}, Builder())
    assert str(info.value) == (
        f"artifact cache directory {root / 'onnx-export'}: got 'a file at {file}', expected a "
        f"directory; remove that file or {FIX}")


def test_an_entry_path_that_is_a_file_is_rebuilt(built: tuple[ArtifactCache, Builder, Path]
                                                 ) -> None:
    cache, build, path = built
    import shutil

    shutil.rmtree(path)
    path.write_text("junk")
    art = _again(cache, build)
    assert build.calls == 2 and "(not a directory); rebuilt" in art.note
    assert (art.path / "model.onnx").is_file()
