"""The text files of an embedder: a corpus, its queries (with their relevant texts) and a
calibration set; JSONL lines with "text" (and "id", "relevant"), or plain text one per line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, problem


@dataclass(frozen=True)
class Text:
    """One line of a corpus or queries file."""

    text: str
    line: int
    id: str | None = None
    relevant: tuple[int | str, ...] | None = None  # queries: corpus indices or ids


def read_texts(path: Path, what: str = "corpus") -> list[Text]:
    """JSONL lines with "text" (and "id", "relevant"), or plain text one per line: JSONL when
    the first non-empty line is a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise DataError(problem(f"{what} file", str(path), "an existing text or JSONL file",
                                "check the path in [tool.quantgate]"))
    items: list[Text] = []
    jsonl: bool | None = None
    with path.open("rb") as handle:  # bytes: a line that is not UTF-8 is named by number
        for number, data in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                raw = data.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise DataError(problem(where, f"bytes that are not UTF-8 ({exc.reason} at "
                                        f"byte {exc.start + 1} of the line)", "UTF-8 text",
                                        "re-save the file as UTF-8")) from None
            if not raw:
                continue
            if jsonl is None:
                jsonl = raw.startswith("{")
            if not jsonl:
                items.append(Text(raw, number))
                continue
            items.append(_json_line(raw, where, number))
    if not items:
        raise DataError(problem(f"{what} file", f"{path} (no texts)", "at least one text",
                                "fill the file or point the config at another one"))
    return items


def _json_line(raw: str, where: str, number: int) -> Text:
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise DataError(problem(where, raw[:60], 'a JSON object like {"text": "..."}',
                                f"fix that line ({exc})")) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise DataError(problem(f"{where}: text", record if not isinstance(record, dict)
                                else record.get("text"), "a string under the key 'text'",
                                "fix that line"))
    ident = record.get("id")
    relevant = record.get("relevant")
    if relevant is not None and (not isinstance(relevant, list) or not all(
            isinstance(r, (int, str)) and not isinstance(r, bool) for r in relevant)):
        raise DataError(problem(f"{where}: relevant", relevant, "a list of corpus indices "
                                "(0-based lines of the corpus's texts) or corpus ids",
                                'write e.g. "relevant": [3, 17]'))
    return Text(record["text"], number, None if ident is None else str(ident),
                None if relevant is None else tuple(relevant))
