"""The one atomic write and its clean-up of a killed run's temporary files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_quantgate.atomic import TMP, remove_orphans, temp_sibling, write_text_atomic


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    orphan = tmp_path / f".report.json{TMP}{_dead_pid()}-abc123"
    orphan.write_text("half")
    live = tmp_path / f".report.json{TMP}{os.getpid()}-def456"  # a write in progress: kept
    live.write_text("writing")
    write_text_atomic(target, "whole\n")
    assert target.read_text() == "whole\n"
    assert not orphan.exists() and live.exists()


def test_orphan_directories_go_too_and_other_names_stay(tmp_path: Path) -> None:
    folder = tmp_path / f"abc{TMP}{_dead_pid()}"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"x" * 10)
    other = tmp_path / f"other{TMP}{_dead_pid()}"
    other.mkdir()
    assert remove_orphans(tmp_path, f"abc{TMP}") == [folder]
    assert not folder.exists() and other.exists()


def test_temp_names_are_unique_and_hidden(tmp_path: Path) -> None:
    a, b = temp_sibling(tmp_path / "x.html"), temp_sibling(tmp_path / "x.html")
    assert a != b and a.name.startswith(f".x.html{TMP}{os.getpid()}-")
