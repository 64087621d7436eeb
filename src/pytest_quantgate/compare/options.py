"""Option groups shared by the pytest plugin and the ``quantgate`` command (pytest-benchmark's
``add_*_options(addoption, prefix)`` pattern): one definition, two front ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .tolerances import parse_cli


def add_compare_options(addoption: Callable[..., Any], *, prefix: str = "",
                        dest_prefix: str = "") -> None:
    """``--<prefix>tolerance NAME=VALUE`` (repeatable): over the defaults and the table."""
    addoption(f"--{prefix}tolerance", action="append", dest=f"{dest_prefix}tolerance",
              default=None, metavar="NAME=VALUE", type=parse_cli,
              help="allowed worsening of a measure against the baseline, e.g. "
                   "top1_agreement=0.005, max_abs_logit=25%%, latency=15%% (smallest slowdown "
                   "that counts), alpha=0.01 (significance of the latency test); repeatable")
