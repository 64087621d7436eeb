"""Command-line options, generated from the configuration schema so each key has one."""

from __future__ import annotations

import argparse

import pytest

from ..config import FIELDS


def _cli_type(field_parse):  # type: ignore[no-untyped-def]
    def parse(text: str) -> object:
        from ..errors import ConfigError

        try:
            return field_parse(text)
        except ConfigError as exc:  # rejected at parse time, like pytest-cov's validators
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("quantgate", "quantgate: gate quantised and recompiled models")
    group.addoption("--quantgate", action="store_true", default=False,
                    help="run the built-in gate: logits, topk and accuracy items per backend")
    group.addoption("--quantgate-config", metavar="PYPROJECT", default=None,
                    help="pyproject.toml holding [tool.quantgate] (default: the rootdir's)")
    for f in FIELDS:
        metavar = f.key.upper() if f.kind != "list" else "A,B,..."
        help_text = f.help + (f" (one of {', '.join(f.choices)})" if f.choices else "")
        help_text += f"; default {f.default}" if f.default not in (None, []) else ""
        kwargs: dict[str, object] = {"dest": "quantgate_" + f.key, "default": None,
                                     "metavar": metavar, "help": help_text}
        if f.kind in ("int", "list", "ints"):
            kwargs["type"] = _cli_type(f.parse_cli)
        if f.choices:
            kwargs["choices"] = f.choices
            kwargs.pop("metavar")
        if f.kind == "bool":  # a flag: absent stays None, so pyproject's value is kept
            kwargs = {"dest": kwargs["dest"], "default": None, "help": help_text,
                      "action": "store_true"}
        group.addoption(f.option, **kwargs)  # type: ignore[arg-type]
    from ..compare.options import add_compare_options

    add_compare_options(group.addoption, prefix="quantgate-", dest_prefix="quantgate_")
    group.addoption("--quantgate-update", action="store_true", default=False,
                    help="accept this run: rewrite the --quantgate-compare baseline with its report "
                         "(regressions are shown, not failed)")
