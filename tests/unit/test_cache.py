"""Unit tests of cache.py: the content-addressed artifact store and its hashes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_quantgate.atomic import write_json_atomic
from pytest_quantgate.cache import META, ArtifactCache, hash_parts, hash_path
from pytest_quantgate.errors import DataError


class Builder:
    """A build function that counts its calls and writes one file."""

    def __init__(self, content: str = "weights") -> None:
        self.calls = 0
        self.content = content

    def __call__(self, tmp: Path) -> None:
        self.calls += 1
        assert tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "model.onnx").write_text(self.content)


def leftovers(root: Path) -> list[str]:
    """Temporary files or directories left anywhere under ``root``."""
    return [str(p.relative_to(root)) for p in root.rglob("*") if ".tmp-" in p.name]


# -- get_or_build -------------------------------------------------------------------------------

def test_builds_once_then_hits(tmp_path: Path) -> None:
    cache, build = ArtifactCache(tmp_path), Builder()
    first = cache.get_or_build("onnx-fp32", {"model": "abc", "opset": 17}, build)
    second = cache.get_or_build("onnx-fp32", {"opset": 17, "model": "abc"}, build)
    assert build.calls == 1
    assert (first.hit, second.hit) == (False, True)
    assert first.path == second.path == tmp_path / "onnx-fp32" / first.key
    assert first.key == second.key and len(first.key) == 24
    assert (first.path / "model.onnx").read_text() == "weights"
    assert first.size_bytes == second.size_bytes == len("weights")  # metadata not counted
    assert second.build_seconds == pytest.approx(first.build_seconds)
    assert leftovers(tmp_path) == []


def test_a_new_cache_object_hits_too(tmp_path: Path) -> None:
    build = Builder()
    ArtifactCache(tmp_path).get_or_build("k", {"a": 1}, build)
    again = ArtifactCache(tmp_path).get_or_build("k", {"a": 1}, build)
    assert again.hit and build.calls == 1


def test_metadata_records_the_parts(tmp_path: Path) -> None:
    art = ArtifactCache(tmp_path).get_or_build("k", {"model": "abc", "opset": 17}, Builder())
    meta = json.loads((art.path / META).read_text())
    assert meta["kind"] == "k" and meta["key"] == art.key
    assert meta["parts"] == {"model": "abc", "opset": 17}
    assert meta["size_bytes"] == art.size_bytes


@pytest.mark.parametrize(("kind", "parts"), [
    ("onnx-fp32", {"model": "abc", "opset": 18}),
    ("onnx-fp32", {"model": "abd", "opset": 17}),
    ("onnx-fp32", {"model": "abc", "opset": 17, "calibration": None}),
    ("onnx-fp16", {"model": "abc", "opset": 17}),
])
def test_different_parts_different_key(tmp_path: Path, kind: str, parts: dict[str, object]
                                       ) -> None:
    cache, build = ArtifactCache(tmp_path), Builder()
    base = cache.get_or_build("onnx-fp32", {"model": "abc", "opset": 17}, build)
    other = cache.get_or_build(kind, parts, build)
    assert build.calls == 2
    assert not other.hit
    assert other.key != base.key and other.path != base.path


def test_a_failing_build_leaves_no_artifact_and_no_temp_dir(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)

    def broken(tmp: Path) -> None:
        (tmp / "half.onnx").write_text("half")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        cache.get_or_build("onnx-fp32", {"model": "abc"}, broken)
    kind_dir = tmp_path / "onnx-fp32"
    assert [p.name for p in kind_dir.iterdir() if p.is_dir()] == []
    assert leftovers(tmp_path) == []
    # and the next attempt builds from scratch
    build = Builder()
    art = cache.get_or_build("onnx-fp32", {"model": "abc"}, build)
    assert build.calls == 1 and not art.hit
    assert sorted(p.name for p in art.path.iterdir()) == sorted([META, "model.onnx"])


def test_an_interrupted_build_is_cleaned_up(tmp_path: Path) -> None:
    def interrupted(tmp: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ArtifactCache(tmp_path).get_or_build("k", {}, interrupted)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("meta", ["{not json", "[]", '"x"', '{"build_seconds": 1.0}',
                                  '{"build_seconds": "fast", "size_bytes": 3}'])
def test_corrupt_metadata_rebuilds(tmp_path: Path, meta: str) -> None:
    cache, build = ArtifactCache(tmp_path), Builder()
    first = cache.get_or_build("k", {"a": 1}, build)
    (first.path / META).write_text(meta)
    (first.path / "stale.bin").write_text("old")
    build.content = "fresh"
    second = cache.get_or_build("k", {"a": 1}, build)
    assert build.calls == 2 and not second.hit
    assert second.path == first.path
    assert (second.path / "model.onnx").read_text() == "fresh"
    assert not (second.path / "stale.bin").exists()  # the stale directory was replaced
    assert cache.get_or_build("k", {"a": 1}, build).hit


def test_a_directory_without_metadata_is_rebuilt(tmp_path: Path) -> None:
    cache, build = ArtifactCache(tmp_path), Builder()
    first = cache.get_or_build("k", {"a": 1}, build)
    (first.path / META).unlink()
    assert not cache.get_or_build("k", {"a": 1}, build).hit
    assert build.calls == 2


# -- hash_parts ---------------------------------------------------------------------------------

def test_hash_parts_is_canonical() -> None:
    assert hash_parts({"a": 1, "b": [1, 2]}) == hash_parts({"b": [1, 2], "a": 1})
    assert hash_parts({"a": 1}) != hash_parts({"a": 2})
    assert hash_parts({"p": Path("x")}) == hash_parts({"p": "x"})  # default=str
    assert re.fullmatch(r"[0-9a-f]{64}", hash_parts({}))


# -- hash_path ----------------------------------------------------------------------------------

def make_model(root: Path, order: list[str]) -> Path:
    files = {"config.json": "{}", "tokenizer.json": "tok", "sub/weights.bin": "w" * 100}
    for name in order:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(files[name])
    return root


def test_hash_path_of_a_file(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(b"\x00\x01\x02")
    digest = hash_path(a)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert hash_path(a) == digest
    a.write_bytes(b"\x00\x01\x03")
    assert hash_path(a) != digest


def test_hash_path_of_a_file_larger_than_one_chunk(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = bytearray(b"x" * ((1 << 20) + 10))
    big.write_bytes(data)
    digest = hash_path(big)
    data[-1] = ord("y")  # a change past the first chunk
    big.write_bytes(data)
    assert hash_path(big) != digest


def test_hash_path_of_a_dir_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    one = make_model(tmp_path / "one", ["config.json", "tokenizer.json", "sub/weights.bin"])
    two = make_model(tmp_path / "two", ["sub/weights.bin", "tokenizer.json", "config.json"])
    assert hash_path(one) == hash_path(two)


def test_hash_path_of_a_dir_changes_when_a_byte_changes(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", ["config.json", "tokenizer.json", "sub/weights.bin"])
    digest = hash_path(model)
    (model / "sub" / "weights.bin").write_text("w" * 99 + "v")
    assert hash_path(model) != digest


def test_hash_path_of_a_dir_changes_when_a_file_is_renamed_or_added(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", ["config.json", "tokenizer.json"])
    digest = hash_path(model)
    (model / "tokenizer.json").rename(model / "vocab.json")
    renamed = hash_path(model)
    assert renamed != digest
    (model / "empty.txt").write_text("")
    assert hash_path(model) != renamed


def test_hash_path_ignores_dot_files_inside_dirs(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", ["config.json", "tokenizer.json"])
    digest = hash_path(model)
    (model / ".DS_Store").write_text("junk")
    (model / "sub").mkdir()
    (model / "sub" / ".stamp").write_text("1")
    assert hash_path(model) == digest


def test_hash_path_of_a_dot_file_itself(tmp_path: Path) -> None:
    dot = tmp_path / ".weights"
    dot.write_text("a")
    digest = hash_path(dot)
    dot.write_text("b")
    assert hash_path(dot) != digest


def test_hash_path_ignores_dot_directories(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", ["config.json", "tokenizer.json"])
    digest = hash_path(model)
    meta = model / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text("etag\n1700000000.0\n")
    assert hash_path(model) == digest


def test_hash_path_separates_names_from_contents(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "a").write_text("bc")
    (tmp_path / "two" / "ab").write_text("c")
    assert hash_path(tmp_path / "one") != hash_path(tmp_path / "two")


def test_hash_path_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match=re.escape(
            f"path to hash: got '{missing}', expected an existing file or directory; "
            "check the configured path")):
        hash_path(missing)


# -- write_json_atomic --------------------------------------------------------------------------

def test_write_json_atomic(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "report.json"
    write_json_atomic(target, {"b": 1, "a": [1, 2], "p": Path("x")})
    assert json.loads(target.read_text()) == {"b": 1, "a": [1, 2], "p": "x"}
    assert target.read_text().endswith("\n")
    assert list(target.parent.iterdir()) == [target]
    write_json_atomic(target, {"replaced": True})
    assert json.loads(target.read_text()) == {"replaced": True}
    assert list(target.parent.iterdir()) == [target]


def test_write_json_atomic_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    loop: list[object] = []
    loop.append(loop)
    target = tmp_path / "report.json"
    with pytest.raises(ValueError, match="Circular reference"):
        write_json_atomic(target, loop)
    assert list(tmp_path.iterdir()) == []
