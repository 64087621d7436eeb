"""The reference's per-position numbers of a causal-LM pass, on disk.

The reference's pass writes, per scored position, its negative log-likelihood and top-k token
ids, and per document its final-position logits (``ReferenceWriter``); every other backend's
pass reads them back in the same stream order, batch by batch (``ReferenceReader``). The
folder appears only when complete, so an interrupted run leaves nothing a later run trusts.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import TMP, remove_orphans, write_json_atomic
from ..errors import DataError, problem

_FILES = {"nll": np.float64, "top": np.int32, "final": np.float32}


@dataclass
class BatchScores:
    """A batch of logits reduced to what the gate keeps: per scored position its negative
    log-likelihood and top-k token ids (top-1 first); per final position the whole row."""

    nll: np.ndarray  # float64 (rows,)
    top: np.ndarray  # int32 (rows, k)
    final: np.ndarray  # float32 (finals, vocab)
    row_doc: np.ndarray  # int64 (rows,)
    final_doc: np.ndarray  # int64 (finals,)


class ReferenceWriter:
    """Appends the reference's per-position numbers to files; ``finish`` publishes the folder
    atomically (a run interrupted before then leaves nothing a later run would trust)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.tmp = self.folder.with_name(f".{self.folder.name}{TMP}{os.getpid()}")
        remove_orphans(self.folder.parent, f".{self.folder.name}{TMP}")  # a killed run's
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self._handles = {name: (self.tmp / f"{name}.bin").open("wb") for name in _FILES}

    def add(self, scores: BatchScores) -> None:
        for name, dtype in _FILES.items():
            np.ascontiguousarray(getattr(scores, name), dtype=dtype).tofile(self._handles[name])

    def finish(self, meta: dict[str, Any]) -> None:
        for handle in self._handles.values():
            handle.close()
        write_json_atomic(self.tmp / "meta.json", meta)
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.tmp.replace(self.folder)

    def abort(self) -> None:
        for handle in self._handles.values():
            handle.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class ReferenceReader:
    """The reference's numbers, read sequentially in stream order (plain reads, not memory maps:
    mapped pages would count in the resident set and grow with the corpus)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        tally = self.meta["tally"]
        # score_batch keeps min(k, vocab) ids per row: a vocabulary smaller than k was unreadable
        top_k = min(self.meta["k"], tally["vocab"])
        self._width = {"nll": 1, "top": top_k, "final": tally["vocab"]}
        rows = {"nll": tally["tokens"], "top": tally["tokens"], "final": tally["finals"]}
        for name, dtype in _FILES.items():
            path = self.folder / f"{name}.bin"
            expected = rows[name] * self._width[name] * np.dtype(dtype).itemsize
            if path.stat().st_size != expected:
                raise ValueError(f"{path}: {path.stat().st_size} bytes, expected {expected}")
        self._handles = {name: (self.folder / f"{name}.bin").open("rb") for name in _FILES}

    @property
    def k(self) -> int:
        return int(self.meta["k"])

    def _read(self, name: str, n: int) -> np.ndarray:
        width = self._width[name]
        data = np.fromfile(self._handles[name], dtype=_FILES[name], count=n * width)
        if data.size != n * width:
            raise DataError(problem(f"cached reference outputs in {self.folder}",
                                    f"{data.size // max(width, 1)} more {name} rows",
                                    f"{n} (the pass has more positions than the reference)",
                                    "delete that folder and run again"))
        return data if name == "nll" else data.reshape(n, width)

    def rows(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._read("nll", n), self._read("top", n)

    def finals(self, n: int) -> np.ndarray:
        return self._read("final", n)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
