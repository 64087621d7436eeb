"""An evaluation corpus for a causal LM, read as a stream of documents.

Two formats, chosen by the file's suffix:

- ``.jsonl`` / ``.json``: one document per line, ``{"text": "..."}`` (other keys ignored);
- anything else: plain UTF-8 text, one document per paragraph (paragraphs are separated by one
  or more blank lines; the lines of a paragraph are joined with a newline).

Documents are yielded one at a time and never collected, so reading a corpus ten times larger
costs no more memory (the perplexity computation streams on top of this).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, problem

JSONL_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class Document:
    """One text of the corpus and the line it starts on (for messages)."""

    text: str
    line: int


def iter_documents(path: Path) -> Iterator[Document]:
    """Every document of ``path`` in file order; raises DataError on the first bad one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(problem("corpus file", str(path), "an existing text or JSONL file",
                                "check the path in [tool.quantgate]"))
    reader = _jsonl if path.suffix.lower() in JSONL_SUFFIXES else _paragraphs
    empty = True
    try:
        for doc in reader(path):
            empty = False
            yield doc
    except UnicodeDecodeError as exc:
        # exc.start counts from the start of the decoder's 8 KiB chunk, not of the file
        raise DataError(problem(f"corpus file {path}", f"bytes that are not UTF-8 ({exc.reason} "
                                f"at byte {_bad_byte(path, exc.start)})", "UTF-8 text",
                                "re-save the file as UTF-8")) from None
    if empty:
        raise DataError(problem("corpus file", f"{path} (no text)", "at least one document",
                                "fill the file or point the config at another one"))


def _bad_byte(path: Path, fallback: int) -> int:
    """File offset of the first byte that is not UTF-8 (a newline byte never sits inside a
    UTF-8 sequence, so decoding line by line finds it exactly)."""
    offset = 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += len(raw)
    return fallback


def _jsonl(path: Path) -> Iterator[Document]:
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise DataError(problem(where, line[:60], 'a JSON object like {"text": "..."}',
                                        f"fix that line ({exc})")) from None
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise DataError(problem(f"{where}: text", text if isinstance(record, dict)
                                        else record, "a string under the key 'text'",
                                        "fix that line"))
            if text.strip():
                yield Document(text, number)


def _paragraphs(path: Path) -> Iterator[Document]:
    lines: list[str] = []
    start = 0
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if line.strip():
                if not lines:
                    start = number
                lines.append(line)
            elif lines:
                yield Document("\n".join(lines), start)
                lines = []
    if lines:
        yield Document("\n".join(lines), start)
