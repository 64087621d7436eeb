"""Read and validate the configuration once, at start-up; problems become UsageErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..config import FIELDS, load
from ..errors import ConfigError, QuantgateError
from ..extensions import PROBLEMS
from ..project_file import nearest_pyproject, read_table
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
    # From where pytest was started up to the rootdir: a model repo inside a bigger repo keeps
    # its own table.
    found = nearest_pyproject(config.invocation_params.dir, config.rootpath)
    if found is not None:
        return found
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        return config.inipath
    return config.rootpath / "pyproject.toml"


def check_inputs(config: pytest.Config, st: State) -> None:
    """What can be known before any model runs (preflight.py): the data, the tokenizer, the
    lengths; every problem one line, the run stopped as for a usage error. A pytest-xdist
    worker leaves it to the controller, which checked before starting it."""
    if hasattr(config, "workerinput"):  # (not the environment: a nested run inherits it)
        return
    from ..preflight import preflight

    problems = preflight(st.session())
    if problems:
        raise pytest.UsageError("\n".join(f"quantgate: {p}" for p in problems))


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
        # An extension left out is often why a task or kind is unknown: say so beside it.
        lines = [str(exc), *PROBLEMS]
        raise pytest.UsageError("\n".join(f"quantgate: {line}" for line in lines)) from None
