"""The terminal summary table: one row per backend."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import CheckResult
from ..session import GateSession

HEADER = ("backend", "prec", "size MB", "build s", "max|Δ|", "mean|Δ|", "top-1", "acc Δ",
          "F1 Δ", "checks p/f/s", "verdict")
# causal LM: perplexity and its relative change, next-token agreement over every scored
# position, logit differences at the documents' final positions
LM_HEADER = ("backend", "prec", "size MB", "build s", "ppl", "ppl Δ", "next top-1", "top-k",
             "final max|Δ|", "checks p/f/s", "verdict")


def header(gate: GateSession) -> tuple[str, ...]:
    return LM_HEADER if gate.is_lm else HEADER


def backend_verdict(gate: GateSession, name: str) -> tuple[str, str]:
    """(verdict word, one-line reason) of a backend from its check records."""
    results = gate.records(name).values()
    expected = name in gate.config.expect_fail
    if any(r.verdict == "error" for r in results):
        word = "ERROR"
    elif any(r.verdict == "failed" for r in results):
        word = "FAIL"
    elif all(r.verdict == "skipped" for r in results):
        word = "SKIP"
    else:
        word = "PASS"
    if expected:
        word = {"FAIL": "FAIL (expected)", "PASS": "XPASS (strict: fails)"}.get(word, word)
    by_reason: dict[str, list[str]] = {}
    for r in results:
        if r.verdict in ("failed", "error"):
            by_reason.setdefault(short_reason(r), []).append(r.check)
    reasons = [f"{'/'.join(checks)}: {text}" for text, checks in by_reason.items()]
    if not reasons:
        reasons = [r.reason for r in results if r.verdict == "skipped"][:1]
    missing = [r.check for r in results if r.verdict == "missing"]
    if missing:
        reasons.append(f"not measured: {', '.join(missing)}")
    return word, "; ".join(reasons)


def short_reason(result: CheckResult) -> str:
    """The failing measures only, without the explanation the full diagnosis gives."""
    failed = [m for m in result.measures if not m.passed]
    parts = [f"{m.name} {m.value:.3g} {'>' if m.op == '<=' else '<'} {m.threshold:.3g}"
             for m in failed]
    if not parts or "NaN" in result.reason:
        return result.reason.split(";")[0]
    return ", ".join(parts)


def rows(gate: GateSession) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name in [gate.config.reference, *gate.judged()]:
        run = gate.run(name)
        info = run.info
        size = f"{info.size_bytes / 1e6:.2f}" if info and info.size_bytes is not None else "-"
        build = f"{info.build_seconds:.1f}" if info and info.build_seconds is not None else "-"
        if info and info.cache_hit:
            build += "*"
        if name == gate.config.reference:
            first = f"{run.lm.ppl:.4g}" if run.lm is not None else "ref"
            out.append((name, run.precision, size, build, first, "ref", "ref", "ref", "ref", "",
                        "REFERENCE" if run.status == "ok" else run.status.upper()))
            continue
        gate.results(name)
        v = gate.metrics.get(name, {})
        word, _ = backend_verdict(gate, name)
        if gate.is_lm:
            out.append((name, run.precision, size, build, _f(v, "ppl", "{:.4g}"),
                        _pct(v, "ppl_delta"), _f(v, "top1_agreement", "{:.3f}"),
                        _f(v, "topk_overlap", "{:.3f}"), _f(v, "max_abs_logit", "{:.4f}"),
                        _counts(gate, name), word))
            continue
        out.append((name, run.precision, size, build, _f(v, "max_abs_logit", "{:.4f}"),
                    _f(v, "mean_abs_logit", "{:.4f}"), _f(v, "top1_agreement", "{:.3f}"),
                    _f(v, "accuracy_delta", "{:+.3f}", neg=True),
                    _f(v, "f1_delta", "{:+.3f}", neg=True), _counts(gate, name), word))
    return out


def _counts(gate: GateSession, name: str) -> str:
    """passed/failed/skipped checks of a backend (errors count as failed, missing as skipped)."""
    verdicts = [r.verdict for r in gate.records(name).values()]
    passed = verdicts.count("passed")
    failed = verdicts.count("failed") + verdicts.count("error")
    return f"{passed}/{failed}/{len(verdicts) - passed - failed}"


def degraded(gate: GateSession) -> str:
    """One line: how many judged backends passed, failed, could not run; the degraded rate."""
    words = [backend_verdict(gate, n)[0] for n in gate.judged()]
    n = len(words)
    if not n:
        return "no backend was judged"
    passed = sum(w == "PASS" for w in words)
    expected = sum(w == "FAIL (expected)" for w in words)
    failed = sum(w in ("FAIL", "XPASS (strict: fails)") for w in words)
    skipped = sum(w == "SKIP" for w in words)
    errors = sum(w == "ERROR" for w in words)
    rate = (skipped + errors) / n
    return (f"{n} backends judged: {passed} passed, {failed} failed, {expected} failed as "
            f"expected, {skipped} skipped, {errors} errors; degraded rate {rate:.0%} "
            f"({skipped + errors} of {n} could not produce a verdict)")


def render(table: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    def line(r: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 or i == len(r) - 1 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in table)]


def _pct(values: dict[str, float], key: str) -> str:
    """A relative change as a signed percentage; one that rounds to nothing is +0.00%."""
    if key not in values:
        return "-"
    value = values[key]
    return f"{0.0 if abs(value) < 0.00005 else value:+.2%}"


def _f(values: dict[str, float], key: str, fmt: str, neg: bool = False) -> str:
    if key not in values:
        return "-"
    # Deltas are stored as reference minus backend (a drop is positive); show the change.
    value = -values[key] if neg else values[key]
    if neg and abs(value) < 0.0005:
        value = 0.0  # no "-0.000": a change that rounds to nothing shows as +0.000
    return fmt.format(value)
