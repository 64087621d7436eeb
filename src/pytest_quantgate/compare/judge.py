"""Judging a run against a baseline, measure by measure; latency by a one-sided test.

Quality measures are deterministic functions of the backend and the eval set, so a change beyond
its tolerance is real. Latency is judged on each round's time as a share of the reference's
round paired with it: a shared machine's speed moves between two runs by more than the slowdowns
worth catching, and the pairs cancel that. A slowdown counts only when both hold: it is
significant (one-sided Mann-Whitney U on the rounds, p < alpha; Welch's t-test from the summary
statistics when a baseline kept no rounds) and it is large (the median grew by more than the
``latency`` tolerance). Rounds from one run are not independent samples of the machine's state,
so the test alone flags any drift; the size of the change decides, measured from the median of
the runs accepted into the baseline where it kept several (``history``). Without pairs on both
sides the raw times are judged, and the note says so. The plugin times a suspected slowdown a
second time before failing it (``plugin/comparing``). scipy.stats is imported only for latency.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from statistics import median
from typing import Any

from ..errors import ConfigError, problem
from .baseline import Measures, RunSummary, Timing
from .tolerances import Tolerances

# Load average per usable core above which latency is not judged. The timed runtime itself keeps
# about one core per core busy (ONNX Runtime's intra-op threads), so 1.0 is a quiet machine.
OVERLOADED = 1.5


@dataclass(frozen=True)
class Delta:
    """One measure (or one latency) of one backend: baseline, now and whether it regressed."""

    backend: str
    check: str  # "logits", "topk"... or "latency[b32]"
    name: str  # the measure, or "p50 ms"
    baseline: float
    now: float
    worse_by: float  # > 0: worse than the baseline (in the measure's own direction)
    allowed: float
    regressed: bool
    note: str = ""
    retimed: float | None = None  # latency: the second timing's worse_by, where there was one

    def line(self) -> str:
        sign = "+" if self.now - self.baseline >= 0 else "-"
        text = (f"{self.name} {self.baseline:.4g} -> {self.now:.4g} "
                f"({sign}{abs(self.now - self.baseline):.3g}")
        if self.check.startswith("latency"):
            text += f", {self.worse_by:+.1%}; slower than {self.allowed:.0%} counts"
        else:
            text += f"; allowed worse by {self.allowed:.3g}"
        return text + (f"; {self.note}" if self.note else "") + ")"


@dataclass
class Comparison:
    baseline: str
    deltas: list[Delta] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # different machine, versions, data
    notes: list[str] = field(default_factory=list)  # not comparable: new or missing backends

    @property
    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas if d.regressed]


# Checks whose measures come from inputs generated afresh each run (the adversarial corpus has
# a new seed per run outside the ci profile): the worst of another sample is no regression of
# the code, and the item itself fails whenever a generated input breaks the thresholds.
NOT_COMPARED = ("adversarial",)


def judge_measures(backend: str, check: str, base: Mapping[str, tuple[float, str]],
                   now: Mapping[str, tuple[float, str]], tolerances: Tolerances) -> list[Delta]:
    """Every measure present on both sides; worse = higher for ``<=`` measures, lower for ``>=``."""
    if check in NOT_COMPARED:
        return []
    out = []
    for name, (value, op) in now.items():
        if name not in base or op not in ("<=", ">="):
            continue  # measured only (a causal LM's ppl): its judged form is ppl_delta
        before = base[name][0]
        worse_by = value - before if op == "<=" else before - value
        allowed = tolerances.of(name).allowed(before)
        out.append(Delta(backend, check, name, before, value, worse_by, allowed,
                         bool(worse_by > allowed + 1e-12)))
    return out


def _no_scipy() -> ConfigError:
    return ConfigError(problem("comparing latency with a baseline", "no scipy installed",
                               "scipy (its Mann-Whitney U and Welch tests judge a slowdown)",
                               "pip install 'pytest-quantgate[latency]'"))


def require_scipy() -> None:
    """One line naming the extra when scipy is missing, asked by the plugin at start-up when
    latency is compared: a long gate run must not end in a ModuleNotFoundError. It looks the
    module up without importing it (scipy.stats takes 1.6-2.6 s to import here)."""
    if importlib.util.find_spec("scipy") is None:
        raise _no_scipy()


def scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:
        raise _no_scipy() from None
    return stats


def judge_latency(backend: str, batch_size: int, base: Timing, now: Timing,
                  tolerances: Tolerances) -> Delta:
    """Slower beyond ``tolerances.latency`` of the baseline, and significant.

    Where both runs paired each round with a round of the same reference, the per-round ratios
    are judged: the machine's drift between the runs cancels out of them. Otherwise the raw
    times are, and the note says why (they move with the machine's speed).
    """
    stats = scipy_stats()
    check = f"latency[b{batch_size}]"
    if base.relative and now.relative and base.reference == now.reference:
        test = stats.mannwhitneyu(now.relative, base.relative, alternative="greater")
        p = float(test.pvalue)
        runs = base.accepted if len(base.accepted) > 1 else ()
        # several accepted runs: their median, so that one fast or slow run moves no bar
        before, after = median(runs or base.relative), median(now.relative)
        worse_by = after / before - 1 if before > 0 else 0.0
        note = (f"{_mw_note(test, len(now.relative), len(base.relative))}; "
                f"p50 {base.median * 1e3:.3g} -> {now.median * 1e3:.3g} ms")
        if runs:
            note += (f"; baseline: median of {len(runs)} accepted runs, which spread "
                     f"{min(runs):.3g}-{max(runs):.3g}")
        return _guarded(Delta(backend, check, f"time / {now.reference}", before, after,
                              worse_by, tolerances.latency,
                              p < tolerances.alpha and worse_by > tolerances.latency, note),
                        base, now)
    if base.rounds and now.rounds and min(len(base.rounds), len(now.rounds)) >= 3:
        test = stats.mannwhitneyu(now.rounds, base.rounds, alternative="greater")
        p = float(test.pvalue)
        before, after = base.median, now.median
        note = _mw_note(test, len(now.rounds), len(base.rounds))
    else:
        test = stats.ttest_ind_from_stats(now.mean, now.stddev, now.n, base.mean, base.stddev,
                                          base.n, equal_var=False, alternative="greater")
        p = float(test.pvalue) if test.pvalue == test.pvalue else 1.0  # NaN: no spread at all
        before, after = base.mean, now.mean
        note = f"Welch p={p:.2g} from summary statistics (baseline kept no rounds)"
    note += f"; raw times: {_unpaired(base, now)}"
    worse_by = after / before - 1 if before > 0 else 0.0
    return _guarded(Delta(backend, check, "p50 ms" if base.rounds else "mean ms", before * 1e3,
                          after * 1e3, worse_by, tolerances.latency,
                          p < tolerances.alpha and worse_by > tolerances.latency, note),
                    base, now)


def _mw_note(test: Any, n_now: int, n_base: int) -> str:
    # U / (n1 n2): the chance that a round now is slower than a baseline round
    share = float(test.statistic) / (n_now * n_base)
    return f"Mann-Whitney p={float(test.pvalue):.2g}, P(slower)={share:.2f}"


def _unpaired(base: Timing, now: Timing) -> str:
    if base.relative and now.relative:
        return (f"the runs were paired with different references ({base.reference}, "
                f"{now.reference})")
    which = "the baseline's rounds are" if not base.relative else "this run's rounds are"
    return (f"{which} not paired with the reference (a report from before pairing, or a "
            "pytest-benchmark run saved without --benchmark-save-data); re-record it")


def _guarded(delta: Delta, base: Timing, now: Timing) -> Delta:
    """Not judged where other work competed for the cores: a slowdown may be contention."""
    loads = [x for x in (base.load_per_core, now.load_per_core) if x is not None]
    if not loads or max(loads) <= OVERLOADED:
        return delta
    note = delta.note + ("; not judged" if delta.regressed else "")
    note += (f"; machine oversubscribed (load per core {_load(base)} in the baseline, "
             f"{_load(now)} now; rerun on a quiet machine)")
    return replace(delta, regressed=False, note=note)


def _load(t: Timing) -> str:
    return f"{t.load_per_core:.1f}" if t.load_per_core is not None else "unknown"


def compare_runs(base: RunSummary, now: RunSummary, tolerances: Tolerances) -> Comparison:
    """Every backend and batch size the two runs share; the rest as notes."""
    result = Comparison(base.source, warnings=machine_warnings(base, now))
    result.deltas.extend(compare_measures(base.measures, now.measures, tolerances))
    for name in sorted(set(base.measures) - set(now.measures)):
        result.notes.append(f"{name}: in the baseline, not in this run")
    for name in sorted(set(now.measures) - set(base.measures)):
        result.notes.append(f"{name}: new, no baseline to compare with")
    for key in sorted(set(base.latency) & set(now.latency)):
        result.deltas.append(judge_latency(key[0], key[1], base.latency[key], now.latency[key],
                                           tolerances))
    return result


def compare_measures(base: Measures, now: Measures, tolerances: Tolerances) -> list[Delta]:
    out: list[Delta] = []
    for backend, checks in now.items():
        for check, values in checks.items():
            out.extend(judge_measures(backend, check, base.get(backend, {}).get(check, {}),
                                      values, tolerances))
    return out


def machine_warnings(base: RunSummary, now: RunSummary) -> list[str]:
    """Why the two runs may not be comparable (the manifest says), one line each."""
    if base.manifest is not None and now.manifest is not None:
        from ..manifest import compare_manifests

        return compare_manifests(base.manifest, now.manifest)
    lines = []
    if base.kind == "pytest-benchmark" and now.manifest is not None:
        cpu = (base.machine.get("cpu") or {}).get("brand_raw")
        ours = ((now.manifest or {}).get("machine") or {}).get("cpu")
        if cpu and ours and cpu != ours:
            lines.append(f"CPU: baseline {cpu}, current {ours} (latency is not comparable)")
        version = base.machine.get("python_version")
        if version and version != now.manifest.get("python"):
            lines.append(f"python version: baseline {version}, current {now.manifest.get('python')}")
    return lines


def describe_source(run: RunSummary) -> str:
    commit = f" at {run.commit[:10]}" if run.commit else ""
    return f"{run.source} ({run.kind}{commit})"

