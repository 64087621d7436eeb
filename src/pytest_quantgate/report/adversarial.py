"""The terminal summary's line on the adversarial search: what it drew, what it tried, what it
cost. Times change from run to run, so they are here and in each backend's report slice, never
in a record's reason (a passed reason reads the same in a serial and a pytest-xdist run)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..snapshot import RunSnapshot
from .columns import number


def adversarial_line(snapshot: RunSnapshot) -> str | None:
    """One line over every backend's adversarial slice; None when no backend has one."""
    parts: list[Mapping[str, Any]] = [b.adversarial for b in snapshot.backends.values()
                                      if b.adversarial]
    if not parts:
        return None
    first = parts[0]
    # Once per process (each pytest-xdist worker has its own): the longest one is shown.
    corpus = max(number(p.get("corpus_seconds")) or 0.0 for p in parts)
    source = ("corpus and the reference's outputs on it read from the cache"
              if all(p.get("corpus_cached") for p in parts)
              else f"corpus drawn and scored by the reference in {corpus:.2f} s")
    # A fresh seed is drawn per process: pytest-xdist workers each search their own corpus.
    seeds = list(dict.fromkeys(str(p.get("seed")) for p in parts))
    seed = (f"seed {seeds[0]}" if len(seeds) == 1
            else f"seeds {', '.join(seeds)}, one per pytest-xdist worker")
    line = (f"adversarial ({first.get('profile')} profile, {seed}): "
            f"{first.get('n_inputs')} generated inputs per backend, {source}")
    if all("searched" in p for p in parts):  # a report written before the key says nothing
        searched = [p for p in parts if p.get("searched")]
        tried = sum(int(p.get("inputs_tried") or 0) for p in searched)
        one = sum(int(p.get("tried_one_by_one") or 0) for p in searched)
        seconds = sum(number(p.get("search_seconds")) or 0.0 for p in searched)
        stopped = sum(1 for p in searched if p.get("budget_exhausted"))
        line += (f"; searched {len(searched)} of {len(parts)} backends (those with a failing "
                 f"input or a saved failure): {tried} inputs tried, {one} of them scored one by "
                 f"one, in {seconds:.2f} s")
        if stopped:
            budget = number(first.get("budget_seconds"))
            line += (f"; {stopped} stopped at the {'?' if budget is None else f'{budget:g}'} s "
                     "budget (adversarial_budget)")
    total = corpus + sum(number(p.get("seconds")) or 0.0 for p in parts)
    return f"{line}; {total:.2f} s in all"
