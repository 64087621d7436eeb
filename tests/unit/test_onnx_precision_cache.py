"""The cache of inferred ONNX precisions (onnx_precision.cached_precisions): the config is loaded
on every pytest run of a project, --quantgate or not, and an unchanged user file must not be
parsed (nor onnx imported) again."""

from __future__ import annotations

import json
import os
import sys
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from onnx_graphs import save, token_classifier

from pytest_quantgate import atomic
from pytest_quantgate.backends import onnx_precision, registry
from pytest_quantgate.backends.fake_model import write_fake_model
from pytest_quantgate.backends.onnx_precision import (
    CACHE_FILE,
    InferredPrecision,
    cached_precisions,
)
from pytest_quantgate.config import load

needs_onnx = pytest.mark.skipif(find_spec("onnx") is None, reason="onnx is not installed")
VOCAB = 20
INT8 = InferredPrecision("int8", True, "1 DynamicQuantizeLinear, 1 MatMulInteger")


@pytest.fixture(autouse=True)
def _no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "all_kinds", lambda: dict(registry.BUILTIN))


def _project(root: Path, **backend: Any) -> dict[str, Any]:
    write_fake_model(root / "model", ("a", "b", "c"), ["some words here"])
    (root / "eval.jsonl").write_text('{"text": "some words", "label": "a"}\n')
    return {"model": "model", "eval": "eval.jsonl", "reference": "ref",
            "backend": [{"name": "ref", "kind": "fake"},
                        {"name": "mine", "kind": "onnx", "path": "models/mine.onnx", **backend}]}


def _load(root: Path, table: dict[str, Any], cache_dir: Path | None = None):  # type: ignore[no-untyped-def]
    cli = {"cache_dir": str(cache_dir)} if cache_dir is not None else {}
    return load(table, base_dir=root, cli=cli, cli_dir=root, source="pyproject.toml")


@pytest.fixture
def onnx_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths onnx.load is called with, from now on."""
    import onnx

    calls: list[str] = []
    real = onnx.load

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(onnx, "load", counted)
    return calls


def _model(root: Path, kind: str = "int8-dynamic") -> Path:
    return save(token_classifier(VOCAB, kind=kind), root / "models" / "mine.onnx")


def _cache(root: Path) -> Path:
    return root / ".quantgate-cache" / CACHE_FILE


@needs_onnx
def test_a_second_load_reuses_the_precision_without_reading_the_file(
        tmp_path: Path, onnx_loads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _model(tmp_path)
    first = _load(tmp_path, _project(tmp_path))
    assert first.inferred_precision == {"mine": INT8} and len(onnx_loads) == 1
    assert _cache(tmp_path).is_file()  # the default cache_dir, next to the pyproject
    second = _load(tmp_path, _project(tmp_path))
    assert len(onnx_loads) == 1  # not parsed again
    assert second.inferred_precision == first.inferred_precision
    assert second.decl("mine").precision == "int8"
    assert second.inferred_precision["mine"].header_line("mine") == \
        first.inferred_precision["mine"].header_line("mine")
    monkeypatch.setitem(sys.modules, "onnx", None)  # an import of onnx now fails: none is made
    assert _load(tmp_path, _project(tmp_path)).inferred_precision == {"mine": INT8}


@needs_onnx
def test_touching_or_changing_the_file_reads_it_again(tmp_path: Path,
                                                      onnx_loads: list[str]) -> None:
    path = _model(tmp_path)
    _load(tmp_path, _project(tmp_path))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert _load(tmp_path, _project(tmp_path)).inferred_precision == {"mine": INT8}
    assert len(onnx_loads) == 2
    _model(tmp_path, "fp16")  # replaced by another model
    got = _load(tmp_path, _project(tmp_path)).inferred_precision["mine"]
    assert (got.precision, got.inferred, len(onnx_loads)) == ("fp16", True, 3)
    _load(tmp_path, _project(tmp_path))
    assert len(onnx_loads) == 3


@needs_onnx
def test_another_format_or_plugin_version_infers_again(tmp_path: Path, onnx_loads: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _model(tmp_path)
    _load(tmp_path, _project(tmp_path))
    monkeypatch.setattr(onnx_precision, "CACHE_FORMAT", onnx_precision.CACHE_FORMAT + 1)
    _load(tmp_path, _project(tmp_path))
    assert len(onnx_loads) == 2
    data = json.loads(_cache(tmp_path).read_text())
    data["version"] = "0.0.1"  # written by another release
    _cache(tmp_path).write_text(json.dumps(data))
    _load(tmp_path, _project(tmp_path))
    assert len(onnx_loads) == 3


@needs_onnx
@pytest.mark.parametrize("content", [
    b"\x00\xffnot json", b"{\"format\": 1", b"[]", b"{}", b"{\"files\": []}",
], ids=["binary", "truncated", "list", "empty", "files-not-a-table"])
def test_a_corrupt_cache_file_is_ignored_and_rewritten(tmp_path: Path, onnx_loads: list[str],
                                                       content: bytes) -> None:
    _model(tmp_path)
    _cache(tmp_path).parent.mkdir()
    _cache(tmp_path).write_bytes(content)
    assert _load(tmp_path, _project(tmp_path)).inferred_precision == {"mine": INT8}
    assert len(onnx_loads) == 1
    json.loads(_cache(tmp_path).read_text())  # rewritten whole
    _load(tmp_path, _project(tmp_path))
    assert len(onnx_loads) == 1


@needs_onnx
def test_a_malformed_entry_for_the_file_is_not_trusted(tmp_path: Path,
                                                       onnx_loads: list[str]) -> None:
    _model(tmp_path)
    _load(tmp_path, _project(tmp_path))
    data = json.loads(_cache(tmp_path).read_text())
    (entry,) = data["files"].values()
    entry["precision"] = "fp64"
    _cache(tmp_path).write_text(json.dumps(data))
    assert _load(tmp_path, _project(tmp_path)).inferred_precision == {"mine": INT8}
    assert len(onnx_loads) == 2


@needs_onnx
def test_what_could_not_be_inferred_is_not_cached(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _model(tmp_path)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "onnx", None)  # the extra not installed yet
        got = _load(tmp_path, _project(tmp_path)).inferred_precision["mine"]
        assert (got.precision, got.inferred) == ("fp32", False)
    assert not (tmp_path / ".quantgate-cache").exists()  # nothing written, no directory made
    assert _load(tmp_path, _project(tmp_path)).inferred_precision == {"mine": INT8}  # installed


@needs_onnx
def test_an_unreadable_file_is_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "models" / "mine.onnx"
    path.parent.mkdir()
    path.write_bytes(b"\x00not a model")
    got = _load(tmp_path, _project(tmp_path)).inferred_precision["mine"]
    assert (got.precision, got.inferred) == ("fp32", False)
    assert not (tmp_path / ".quantgate-cache").exists()
    _model(tmp_path)  # the export fixed in place
    assert _load(tmp_path, _project(tmp_path)).inferred_precision == {"mine": INT8}


def test_nothing_to_infer_creates_no_cache_directory(tmp_path: Path) -> None:
    _load(tmp_path, _project(tmp_path, precision="int8"))  # declared: not read
    _load(tmp_path, _project(tmp_path))  # no file: left to the runner
    assert not (tmp_path / ".quantgate-cache").exists()


@needs_onnx
@pytest.mark.parametrize("where", ["under-a-file", "is-a-file", "read-only", "write-refused"])
def test_a_cache_dir_that_cannot_be_written_only_means_no_cache(
        tmp_path: Path, onnx_loads: list[str], where: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _model(tmp_path)
    if where == "write-refused":  # what a read-only directory does, also where tests run as root
        def refuse(path: Path, data: Any) -> Path:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(atomic, "write_json_atomic", refuse)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory would go")
    cache_dir = {"under-a-file": blocker / "cache", "is-a-file": blocker,
                 "read-only": tmp_path / "ro", "write-refused": tmp_path / "cache"}[where]
    if where == "read-only":
        cache_dir.mkdir()
        cache_dir.chmod(0o555)
        if os.access(cache_dir, os.W_OK):  # root ignores the mode
            cache_dir.chmod(0o755)
            pytest.skip("running as root: a read-only directory is still writable")
    try:
        for _ in range(2):
            cfg = _load(tmp_path, _project(tmp_path), cache_dir=cache_dir)
            assert cfg.inferred_precision == {"mine": INT8}
    finally:
        if where == "read-only":
            cache_dir.chmod(0o755)
    assert len(onnx_loads) == 2  # inferred each time, never an error


def test_parallel_writers_leave_a_whole_file_with_every_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-xdist workers each load the config: the writes are atomic and merge."""
    def fake(path: Path) -> InferredPrecision:
        return InferredPrecision("int8", True, f"{path.name} says so")

    monkeypatch.setattr(onnx_precision, "infer_precision", fake)
    files = [tmp_path / f"m{i}.onnx" for i in range(8)]
    for f in files:
        f.write_bytes(b"x")
    cache_dir = tmp_path / "cache"
    errors: list[BaseException] = []

    def worker(path: Path) -> None:
        try:
            for _ in range(20):
                cached_precisions([path], cache_dir)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    json.loads((cache_dir / CACHE_FILE).read_text())  # never a torn file
    cached_precisions(files, cache_dir)  # whatever a race dropped is written back
    data = json.loads((cache_dir / CACHE_FILE).read_text())
    assert set(data["files"]) == {str(f.resolve()) for f in files}
    assert not [p for p in cache_dir.iterdir() if p.name != CACHE_FILE]  # no temporary left
    monkeypatch.setattr(onnx_precision, "infer_precision", lambda p: pytest.fail("re-inferred"))
    assert cached_precisions(files, cache_dir) == {f: fake(f) for f in files}


def test_entries_of_files_that_are_gone_are_dropped(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_precision, "infer_precision",
                        lambda p: InferredPrecision("fp16", True, "float16 weights"))
    old, new = tmp_path / "old.onnx", tmp_path / "new.onnx"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    cached_precisions([old], tmp_path / "cache")
    old.unlink()
    cached_precisions([new], tmp_path / "cache")
    data = json.loads((tmp_path / "cache" / CACHE_FILE).read_text())
    assert list(data["files"]) == [str(new.resolve())]


def test_the_same_file_under_two_names_is_one_entry(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def fake(path: Path) -> InferredPrecision:
        calls.append(path)
        return InferredPrecision("int8", True, "1 MatMulInteger")

    monkeypatch.setattr(onnx_precision, "infer_precision", fake)
    (tmp_path / "models").mkdir()
    real = tmp_path / "models" / "m.onnx"
    real.write_bytes(b"x")
    link = tmp_path / "link.onnx"
    link.symlink_to(real)
    cached_precisions([real], tmp_path / "cache")
    got = cached_precisions([link, tmp_path / "models" / ".." / "models" / "m.onnx"],
                            tmp_path / "cache")
    assert len(calls) == 1 and set(got.values()) == {fake(real)}
