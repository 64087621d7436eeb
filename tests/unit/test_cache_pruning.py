"""Pruning of the cache (cache_pruning.prune): entries unused for ``cache_max_age_days`` are removed at
the end of a session; recent ones, this process's, locked ones and anything not an entry stay.

Fake entries only (a few bytes each), dated by setting their stamp's or files' mtimes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_quantgate import cache, cache_pruning
from pytest_quantgate.atomic import TMP, locked
from pytest_quantgate.cache import META, USED, ArtifactCache, mark_used
from pytest_quantgate.cache_pruning import DAY, Pruned, last_used, prune

NOW = time.time()


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test as a new process: nothing used by this one yet (cache._used_here)."""
    monkeypatch.setattr(cache, "_used_here", set())


def key(n: int) -> str:
    return f"{n:024x}"


def backdate(path: Path, days: float) -> None:
    when = NOW - days * DAY
    os.utime(path, (when, when), follow_symlinks=False)


def entry(root: Path, n: int, *, days: float, kind: str = "onnx-export", size: int = 100,
          stamp: bool = True) -> Path:
    """A fake artifact entry: a model file, the metadata, and its stamp ``days`` old (without a
    stamp, its files are ``days`` old)."""
    folder = root / "artifacts" / kind / key(n)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"w" * size)
    (folder / META).write_text(json.dumps({"build_seconds": 0.1, "size_bytes": size}))
    for file in (folder / "model.onnx", folder / META):
        backdate(file, days if not stamp else days + 1)
    if stamp:
        (folder / USED).touch()
        backdate(folder / USED, days)
    return folder


def reference(root: Path, n: int, *, days: float) -> Path:
    folder = root / "reference" / key(n)
    folder.mkdir(parents=True)
    for name in ("logits.npy", "run.json"):
        (folder / name).write_bytes(b"r" * 10)
        backdate(folder / name, days)
    return folder


def leftovers(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if TMP in p.name]


# -- what is removed and what stays -------------------------------------------------------------

def test_entries_unused_for_longer_than_the_limit_are_removed(tmp_path: Path) -> None:
    old = entry(tmp_path, 1, days=30, size=1000)
    old_fp16 = entry(tmp_path, 2, days=15, kind="onnx-fp16", size=500)
    recent = entry(tmp_path, 3, days=13)
    corpus = entry(tmp_path, 4, days=20, kind="adversarial", size=50)
    size = sum(f.stat().st_size for p in (old, old_fp16, corpus) for f in p.iterdir())
    pruned = prune(tmp_path, 14, now=NOW)
    assert sorted(pruned.removed) == sorted([old, old_fp16, corpus])
    assert pruned.size_bytes == size > 1550  # every file's bytes, the metadata's too
    assert not old.exists() and not old_fp16.exists() and not corpus.exists()
    assert (recent / "model.onnx").read_bytes() == b"w" * 100
    assert leftovers(tmp_path) == []


def test_the_size_counts_every_file_of_the_removed_entries(tmp_path: Path) -> None:
    old = entry(tmp_path, 1, days=30, size=1000)
    (old / "sub").mkdir()
    (old / "sub" / "weights.bin").write_bytes(b"x" * 2000)
    expected = sum(p.stat().st_size for p in old.rglob("*") if p.is_file())
    assert prune(tmp_path, 14, now=NOW).size_bytes == expected >= 3000


def test_reference_outputs_are_pruned_by_the_same_rule(tmp_path: Path) -> None:
    old = reference(tmp_path, 1, days=40)
    recent = reference(tmp_path, 2, days=1)
    stamped = reference(tmp_path, 3, days=40)
    (stamped / USED).touch()  # loaded today: its stamp, newer than its files, says so
    assert prune(tmp_path, 14, now=NOW).removed == (old,)
    assert recent.is_dir() and stamped.is_dir()


def test_an_entry_without_a_stamp_is_as_old_as_its_newest_file(tmp_path: Path) -> None:
    legacy = entry(tmp_path, 1, days=20, stamp=False)
    built_today = entry(tmp_path, 2, days=0, stamp=False)
    assert last_used(legacy) == pytest.approx(NOW - 20 * DAY, abs=1)
    assert prune(tmp_path, 14, now=NOW).removed == (legacy,)
    assert built_today.is_dir()


def test_the_folder_mtime_of_a_restored_entry_does_not_make_it_recent(tmp_path: Path) -> None:
    # A CI cache restored from an archive that keeps file times but not folder times: the
    # folders are "modified" now, the stamps say 30 days.
    old = entry(tmp_path, 1, days=30)
    os.utime(old)  # the folder: now
    assert prune(tmp_path, 14, now=NOW).removed == (old,)


def test_a_hit_refreshes_the_stamp(tmp_path: Path) -> None:
    store = ArtifactCache(tmp_path / "artifacts")
    built = store.get_or_build("onnx-export", {"model": "a"}, lambda d: (d / "m").write_text("x"))
    assert not (built.path / USED).exists()  # a fresh build: its metadata dates it
    assert last_used(built.path) == pytest.approx(time.time(), abs=5)
    for file in (built.path / "m", built.path / META):
        backdate(file, 30)
    assert store.get_or_build("onnx-export", {"model": "a"}, lambda d: None).hit
    assert last_used(built.path) == pytest.approx(time.time(), abs=5)
    backdate(built.path / USED, 30)
    store.get_or_build("onnx-export", {"model": "a"}, lambda d: None)
    assert last_used(built.path) == pytest.approx(time.time(), abs=5)


def test_entries_used_in_this_session_are_kept_whatever_their_stamp(tmp_path: Path) -> None:
    # A stamp that could not be written (a read-only entry) must not get the session's own
    # entries removed: the process remembers what it used.
    store = ArtifactCache(tmp_path / "artifacts")
    built = store.get_or_build("onnx-export", {"model": "a"}, lambda d: (d / "m").write_text("x"))
    for file in (built.path / "m", built.path / META):
        backdate(file, 30)
    old_reference = reference(tmp_path, 1, days=30)
    mark_used(old_reference)  # what reference_cache.reference_dir does
    backdate(old_reference / USED, 30)
    assert prune(tmp_path, 14, now=NOW).removed == ()
    assert built.path.is_dir() and old_reference.is_dir()


def test_an_entry_whose_lock_another_process_holds_is_kept(tmp_path: Path) -> None:
    busy = entry(tmp_path, 1, days=30)
    lock = busy.with_name(busy.name + ".lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from filelock import FileLock; "
         f"lock = FileLock({str(lock)!r}); lock.acquire(); print('held', flush=True); "
         "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert prune(tmp_path, 14, now=NOW).removed == ()
        assert (busy / "model.onnx").is_file()
    finally:
        holder.communicate("")  # releases it
    assert prune(tmp_path, 14, now=NOW).removed == (busy,)


def test_a_lock_held_in_this_process_is_respected_too(tmp_path: Path) -> None:
    busy = entry(tmp_path, 1, days=30)
    with locked(busy.with_name(busy.name + ".lock")):
        assert prune(tmp_path, 14, now=NOW).removed == ()
        assert busy.is_dir()
    assert prune(tmp_path, 14, now=NOW).removed == (busy,)


@pytest.mark.parametrize("days", [0, -1])
def test_zero_disables_pruning(tmp_path: Path, days: int) -> None:
    old = entry(tmp_path, 1, days=3650)
    assert prune(tmp_path, days, now=NOW) == Pruned()
    assert old.is_dir()


def test_a_missing_cache_dir_is_nothing_to_prune(tmp_path: Path) -> None:
    assert prune(tmp_path / "never-made", 14) == Pruned()
    assert not (tmp_path / "never-made").exists()


# -- interruption -------------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_interrupted_removal_leaves_no_entry_that_loads(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    store = ArtifactCache(tmp_path / "artifacts")

    def build(folder: Path) -> None:
        (folder / "model.onnx").write_bytes(b"w" * 1000)
        (folder / "details.json").write_text("{}")

    built = store.get_or_build("onnx-export", {"model": "a"}, build)
    for file in built.path.iterdir():
        backdate(file, 30)
    monkeypatch.setattr(cache, "_used_here", set())  # a later session of another process

    def killed(path: str | Path, *args: object, **kwargs: object) -> None:
        (Path(path) / "details.json").unlink()  # half deleted, then the run is stopped
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_pruning.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        prune(tmp_path, 14, now=NOW)
    monkeypatch.undo()
    assert not built.path.exists()  # the key is gone whole: renamed before any deletion
    [half] = leftovers(tmp_path)
    assert half.startswith(f"artifacts/onnx-export/{built.key}{TMP}{os.getpid()}-")

    again = store.get_or_build("onnx-export", {"model": "a"}, build)
    assert not again.hit and again.note == ""  # rebuilt, not loaded from the half
    assert (again.path / "details.json").is_file()

    # Once the interrupted process is gone, the next prune (or build) in that folder removes
    # its half-deleted directory, as it does a killed build's.
    dead = tmp_path / half.replace(f"{TMP}{os.getpid()}-", f"{TMP}{_dead_pid()}-")
    (tmp_path / half).rename(dead)
    assert prune(tmp_path, 14, now=NOW).removed == ()
    assert leftovers(tmp_path) == []
    assert again.path.is_dir()


def test_a_failed_rename_keeps_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = entry(tmp_path, 1, days=30)

    def refused(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(cache_pruning.os, "rename", refused)
    assert prune(tmp_path, 14, now=NOW).removed == ()
    monkeypatch.undo()
    assert (old / "model.onnx").is_file() and leftovers(tmp_path) == []


# -- only the cache's own layout ----------------------------------------------------------------

def test_what_is_not_an_entry_is_left_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside_entry = outside / key(9)
    outside_entry.mkdir(parents=True)
    (outside_entry / META).write_text("{}")
    (outside_entry / USED).touch()
    backdate(outside_entry / USED, 99)
    (outside / "precious.bin").write_bytes(b"p")
    backdate(outside / "precious.bin", 99)

    root = tmp_path / "cache"
    stale = entry(root, 1, days=30)
    (stale / "link-out").symlink_to(outside / "precious.bin")  # removed as a link, not followed
    unknown = [
        root / "artifacts" / "onnx-export" / "README.txt",  # a stray file
        root / "artifacts" / "onnx-export" / "not-a-key" / "model.onnx",  # a folder not named a key
        root / "artifacts" / "onnx-export" / ("A" * 24) / META,  # not a key: upper case
        root / "artifacts" / "onnx-trt-engines" / key(2) / "engine.plan",  # no stamp: not ours
        root / "reference" / "notes.txt",
        root / "benchmarks" / key(3) / "0001_run.json",  # other plugins' folders
        root / "hypothesis" / key(4) / "example",
        root / "hypothesis-storage" / "examples" / "x",
        root / "onnx-precision.json",
    ]
    for file in unknown:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("keep")
        backdate(file, 99)
    (root / "artifacts" / "onnx-export" / key(5)).symlink_to(outside_entry)  # a linked "entry"
    (root / "artifacts" / "linked-kind").symlink_to(outside)  # a linked kind folder
    (root / "reference" / key(6)).symlink_to(outside_entry)

    assert prune(root, 14, now=NOW).removed == (stale,)
    assert all(file.read_text() == "keep" for file in unknown)
    assert (outside / "precious.bin").read_bytes() == b"p"
    assert (outside_entry / META).is_file()
    assert (root / "artifacts" / "onnx-export" / key(5)).is_symlink()
    assert (root / "artifacts" / "linked-kind").is_symlink()


def test_a_symlinked_artifacts_folder_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    stale = entry(real, 1, days=30)
    root = tmp_path / "cache"
    root.mkdir()
    (root / "artifacts").symlink_to(real / "artifacts")
    assert prune(root, 14, now=NOW).removed == ()
    assert stale.is_dir()


def test_the_cache_dir_itself_may_be_a_link(tmp_path: Path) -> None:
    real = tmp_path / "big-disk"
    stale = entry(real, 1, days=30)
    (tmp_path / "cache").symlink_to(real)
    assert [p.name for p in prune(tmp_path / "cache", 14, now=NOW).removed] == [stale.name]
    assert not stale.exists()


# -- the summary line ---------------------------------------------------------------------------

@pytest.mark.parametrize(("count", "size", "days", "line"), [
    (3, 812_345_678, 14, "quantgate cache: removed 3 entries unused for 14 days (812 MB)"),
    (1, 1_300_000_000, 1, "quantgate cache: removed 1 entry unused for 1 day (1.3 GB)"),
    (2, 4_200, 30, "quantgate cache: removed 2 entries unused for 30 days (4 kB)"),
    (1, 12, 7, "quantgate cache: removed 1 entry unused for 7 days (12 bytes)"),
])
def test_the_line(count: int, size: int, days: int, line: str) -> None:
    removed = tuple(Path(key(i)) for i in range(count))
    assert Pruned(removed, size).line(days) == line


def test_tensorrts_engine_folder_is_stamped_and_pruned_like_the_export(tmp_path: Path) -> None:
    """TensorRT writes its engines into a folder of the cache itself: the provider options stamp
    it, so it is dated by its use (no TensorRT needed to make the options)."""
    from types import SimpleNamespace

    from pytest_quantgate.backends.onnx_gpu import trt_provider_options

    root = tmp_path / "cache"
    ctx = SimpleNamespace(cache=SimpleNamespace(root=root / "artifacts"))
    profile = SimpleNamespace(ort_trt_options=lambda inputs: {})
    options = trt_provider_options(SimpleNamespace(kind="onnx-trt-fp16"), ctx,  # type: ignore[arg-type]
                                   profile, key(7), {"device_id": 0}, ["input_ids"])
    engines = Path(options["trt_engine_cache_path"])
    assert engines == root / "artifacts" / "onnx-trt-engines" / key(7)
    assert (engines / USED).is_file()
    (engines / "model.engine").write_bytes(b"e" * 50)
    assert prune(root, 14, now=NOW).removed == ()  # used by this process
    cache._used_here.clear()  # a later run that did not use it, a month on
    backdate(engines / USED, 30)
    backdate(engines / "model.engine", 30)
    assert prune(root, 14, now=NOW).removed == (engines,)
