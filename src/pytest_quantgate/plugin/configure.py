"""Read and validate the configuration once, at start-up; problems become UsageErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..config import FIELDS, load, read_table
from ..errors import ConfigError, QuantgateError
from .state import State


def pyproject_path(config: pytest.Config) -> Path:
    given = config.getoption("quantgate_config")
    if given:
        path = Path(given)
        path = path if path.is_absolute() else config.invocation_params.dir / path
        if not path.is_file():
            raise pytest.UsageError(
                f"--quantgate-config: got {str(path)!r}, expected an existing pyproject.toml; "
                "fix the path")
        return path
    # The nearest pyproject.toml with a [tool.quantgate] table, from where pytest was started up
    # to the rootdir: a model repo inside a bigger repo keeps its own table.
    start = config.invocation_params.dir
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "[tool.quantgate" in candidate.read_text(encoding="utf-8"):
            return candidate
        if folder == config.rootpath:
            break
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        return config.inipath
    return config.rootpath / "pyproject.toml"


def load_config(config: pytest.Config, st: State) -> None:
    """Validate when the gate is on or a [tool.quantgate] table exists; else stay dormant."""
    cli = {f.key: config.getoption("quantgate_" + f.key) for f in FIELDS}
    try:
        path = pyproject_path(config)
        table = read_table(path)
        if table is None and not st.enabled and not any(v is not None for v in cli.values()):
            return  # installed but unused in this repo: cost nothing, say nothing
        st.config = load(table, base_dir=path.parent, cli=cli,
                         cli_dir=config.invocation_params.dir, source=str(path.name))
    except (ConfigError, QuantgateError) as exc:
        raise pytest.UsageError(f"quantgate: {exc}") from None
