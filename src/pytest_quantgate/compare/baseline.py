"""A run to compare, read from a quantgate JSON report or a pytest-benchmark saved run.

Both become one ``RunSummary``: per backend and check the measures (value and direction), and
per backend and batch size the latency rounds. A pytest-benchmark run carries the quality
measures in each quantgate latency benchmark's ``extra_info``, so either file is a baseline.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, first_line, problem
from .history import ratios

REPORT_FORMAT = "pytest-quantgate-report"
SUPPORTED_VERSION = 3  # 2 and 3 only added keys that comparisons do not read
EXTRA_INFO_VERSION = 1  # extra_info["quantgate"] of a latency benchmark

# backend -> check -> measure -> (value, op); op "<=" means lower is better
Measures = dict[str, dict[str, dict[str, tuple[float, str]]]]


@dataclass(frozen=True)
class Timing:
    """Timed rounds of one backend at one batch size; only summary statistics when a
    pytest-benchmark run was saved without ``--benchmark-save-data``. ``relative`` holds each
    round's time as a share of the reference's round paired with it (empty: not paired);
    ``accepted`` the median share of each run accepted into the baseline for the same code,
    these rounds' run last (``compare.history``; empty: one run, or none kept)."""

    rounds: tuple[float, ...]
    n: int
    mean: float
    stddev: float
    median: float
    load_per_core: float | None = None  # how busy the machine was (None: not recorded)
    reference: str | None = None
    relative: tuple[float, ...] = ()
    accepted: tuple[float, ...] = ()

    @classmethod
    def of(cls, rounds: list[float] | tuple[float, ...], load_per_core: float | None = None,
           *, reference: str | None = None, reference_rounds: Any = (),
           accepted: tuple[float, ...] = ()) -> Timing:
        data = tuple(float(x) for x in rounds)
        n = len(data)
        paired = [float(x) for x in reference_rounds or ()]
        relative = (tuple(a / b for a, b in zip(data, paired, strict=True))
                    if reference and len(paired) == n and all(b > 0 for b in paired) else ())
        return cls(data, n, statistics.fmean(data), statistics.stdev(data) if n > 1 else 0.0,
                   statistics.median(data), load_per_core, reference if relative else None,
                   relative,
                   accepted if relative else ())


@dataclass
class RunSummary:
    source: str
    kind: str  # "quantgate" | "pytest-benchmark"
    manifest: dict[str, Any] | None = None
    commit: str | None = None
    measures: Measures = field(default_factory=dict)
    latency: dict[tuple[str, int], Timing] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)  # pytest-benchmark machine_info


def load_run(path: Path) -> RunSummary:
    """Read a baseline or a report; a file of another kind is a one-line ``DataError``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(problem("baseline", str(path), "an existing quantgate JSON report or "
                                "pytest-benchmark saved run", "record one with --quantgate-update "
                                "(or --quantgate-json, --benchmark-autosave)")) from None
    except (OSError, ValueError) as exc:
        raise DataError(problem(f"baseline {path}", f"unreadable JSON ({exc})", "a JSON file",
                                "point at a report written by --quantgate-json")) from None
    return summarize(data, str(path))


def summarize(data: Any, source: str) -> RunSummary:
    if isinstance(data, Mapping) and data.get("format") == REPORT_FORMAT:
        version = data.get("version")
        if not isinstance(version, int) or version > SUPPORTED_VERSION:
            raise DataError(problem(f"{source}: report version", version,
                                    f"<= {SUPPORTED_VERSION}", "upgrade pytest-quantgate to read it"))
        read: Callable[[Mapping[str, Any], str], RunSummary] = _from_report
    elif isinstance(data, Mapping) and isinstance(data.get("benchmarks"), list):
        read = _from_benchmark
    else:
        read = _unknown
    try:
        return read(data, source)
    except DataError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        # A hand-edited or truncated file: one line, not a traceback at start-up.
        raise DataError(problem(f"baseline {source}", f"a malformed {data.get('format') or 'run'}"
                                f" ({first_line(exc)})", "a file written by --quantgate-json or "
                                "--benchmark-save, unedited", "record it again with "
                                "--quantgate-update")) from None


def _unknown(data: Any, source: str) -> RunSummary:
    keys = sorted(data)[:5] if isinstance(data, Mapping) else type(data).__name__
    raise DataError(problem(f"{source}: format", keys, f"a {REPORT_FORMAT!r} report or a "
                            "pytest-benchmark saved run", "pass a file written by --quantgate-json "
                            "or --benchmark-save/--benchmark-autosave"))


def _from_report(data: Mapping[str, Any], source: str) -> RunSummary:
    manifest = data.get("manifest") or None
    run = RunSummary(source, "quantgate", manifest, ((manifest or {}).get("git") or {}).get("commit"))
    for name, entry in (data.get("backends") or {}).items():
        run.verdicts[name] = str(entry.get("verdict", ""))
        checks = run.measures.setdefault(name, {})
        for record in entry.get("checks", ()):
            checks[record["check"]] = {m["name"]: (float(m["value"]), m["op"])
                                       for m in record.get("measures", ())
                                       if m.get("value") is not None}
        for size, stats in (entry.get("latency") or {}).items():
            rounds = stats.get("rounds") or []
            if stats.get("timed", True) and rounds:
                run.latency[(name, int(size))] = Timing.of(
                    rounds, stats.get("load_per_core"), reference=stats.get("reference"),
                    reference_rounds=stats.get("reference_rounds"),
                    accepted=ratios(stats) if stats.get("accepted") else ())
    return run


def _from_benchmark(data: Mapping[str, Any], source: str) -> RunSummary:
    commit = (data.get("commit_info") or {}).get("id")
    run = RunSummary(source, "pytest-benchmark", None, commit, machine=data.get("machine_info") or {})
    for bench in data["benchmarks"]:
        info = bench.get("extra_info") or {}
        if info.get("quantgate") != EXTRA_INFO_VERSION or "backend" not in info:
            continue  # a user's own benchmark: not ours to judge
        name, size = str(info["backend"]), int(info["batch_size"])
        for check, values in (info.get("measures") or {}).items():
            run.measures.setdefault(name, {})[check] = {k: (float(v[0]), str(v[1]))
                                                        for k, v in values.items()}
        stats = bench.get("stats") or {}
        if stats.get("data"):
            run.latency[(name, size)] = Timing.of(stats["data"], info.get("load_per_core"),
                                                  reference=info.get("reference"),
                                                  reference_rounds=info.get("reference_rounds_s"))
        elif stats.get("rounds"):
            run.latency[(name, size)] = Timing((), int(stats["rounds"]), float(stats["mean"]),
                                               float(stats["stddev"]), float(stats["median"]))
    return run
