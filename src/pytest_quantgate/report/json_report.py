"""The versioned JSON report: the run snapshot's ``to_dict`` (``snapshot.FORMAT``/``VERSION``)."""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_json_atomic
from ..snapshot import FORMAT, VERSION, RunSnapshot

__all__ = ["FORMAT", "VERSION", "write_report"]


def write_report(snapshot: RunSnapshot, path: Path) -> Path:
    write_json_atomic(Path(path), snapshot.to_dict())
    return Path(path)
