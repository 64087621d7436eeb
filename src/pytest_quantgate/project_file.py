"""Finding and reading the project's ``[tool.quantgate]`` table: the plugin and ``quantgate
compare`` read the same file the same way; config.py validates what it holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomli is the same parser (tomllib is its copy); a dependency only there
    import tomli as tomllib

from .errors import ConfigError, problem


def nearest_pyproject(start: Path, stop: Path | None = None) -> Path | None:
    """The nearest pyproject.toml with a [tool.quantgate] table, from ``start`` up to ``stop``
    (pytest's rootdir), or without one up to the repository's top (a folder with .git): a model
    repo inside a bigger repo keeps its own table, and a file outside the checkout is never
    used. The plugin and ``quantgate compare`` find the same file."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "[tool.quantgate" in candidate.read_text(encoding="utf-8"):
            return candidate
        if folder == stop or stop is None and (folder / ".git").exists():
            return None
    return None


def read_table(pyproject: Path) -> dict[str, Any] | None:
    """The ``[tool.quantgate]`` table of a pyproject.toml, or None when it has none."""
    if not pyproject.is_file():
        return None
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(problem(str(pyproject), f"invalid TOML ({exc})", "valid TOML",
                                  "fix the file")) from None
    tool = data.get("tool", {})
    table = tool.get("quantgate") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(problem(f"{pyproject}: tool.quantgate", table, "a table",
                                  "write it as [tool.quantgate]"))
    return table
