"""A backend's verdict word and one-line reason, from its check records alone.

Pure: the run snapshot computes these when it is built and again when the records of several
pytest-xdist workers are merged, so every view shows the same word for the same records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .records import CheckResult

PASS, FAIL, ERROR, SKIP, REGRESSED = "PASS", "FAIL", "ERROR", "SKIP", "REGRESSED"
INCONCLUSIVE = "INCONCLUSIVE"  # no check failed; one could not be decided on this sample
EXPECTED_FAIL, STRICT_XPASS = "FAIL (expected)", "XPASS (strict: fails)"


def backend_verdict(records: Iterable[CheckResult], expected: bool) -> tuple[str, str]:
    """(verdict word, one-line reason) of a backend from its check records."""
    results = list(records)
    if any(r.verdict == "error" for r in results):
        word = ERROR
    elif any(r.verdict == "failed" for r in results):
        word = FAIL
    elif results and all(r.verdict == "skipped" for r in results):
        word = SKIP
    elif any(r.verdict == "inconclusive" for r in results):
        word = INCONCLUSIVE
    else:
        word = PASS
    if expected:
        word = {FAIL: EXPECTED_FAIL, PASS: STRICT_XPASS}.get(word, word)
    by_reason: dict[str, list[str]] = {}
    for r in results:
        if r.verdict in ("failed", "error") or r.verdict == "inconclusive" and word == \
                INCONCLUSIVE:
            by_reason.setdefault(short_reason(r), []).append(r.check)
    reasons = [f"{'/'.join(checks)}: {text}" for text, checks in by_reason.items()]
    if not reasons:
        reasons = [r.reason for r in results if r.verdict == "skipped"][:1]
    missing = [r.check for r in results if r.verdict == "missing"]
    if missing:
        reasons.append(f"not measured: {', '.join(missing)}")
    return word, "; ".join(reasons)


def short_reason(result: CheckResult) -> str:
    """The failing measures only, without the explanation the full diagnosis gives; an error
    or a skip whole (its one line says how to fix it)."""
    if result.verdict in ("error", "skipped"):
        return result.reason
    unsure = result.verdict == "inconclusive"
    failed = [m for m in result.measures if not m.passed and m.threshold is not None
              and m.inconclusive == unsure]
    parts = [f"{m.name} {m.value:.3g} {'>' if m.op == '<=' else '<'} {m.threshold:.3g}"
             + (f" (about {m.decide_at} inputs would decide)" if unsure and m.decide_at else "")
             for m in failed]
    if not parts or "NaN" in result.reason:
        return result.reason.split(";")[0]
    return ("inconclusive: " if unsure else "") + ", ".join(parts)


def check_counts(records: Iterable[CheckResult]) -> str:
    """passed/failed/skipped checks (errors count as failed, missing as skipped)."""
    verdicts = [r.verdict for r in records]
    passed = verdicts.count("passed")
    failed = verdicts.count("failed") + verdicts.count("error")
    return f"{passed}/{failed}/{len(verdicts) - passed - failed}"


def summary_line(words: Sequence[str]) -> str:
    """One line: how many judged backends passed, failed, could not run; the degraded rate."""
    n = len(words)
    if not n:
        return "no backend was judged"
    passed = sum(w == PASS for w in words)
    expected = sum(w == EXPECTED_FAIL for w in words)
    failed = sum(w in (FAIL, STRICT_XPASS, REGRESSED) for w in words)
    skipped = sum(w == SKIP for w in words)
    errors = sum(w == ERROR for w in words)
    unsure = sum(w == INCONCLUSIVE for w in words)
    rate = (skipped + errors) / n
    return (f"{n} backends judged: {passed} passed, {failed} failed, {expected} failed as "
            f"expected, {skipped} skipped, {errors} errors"
            + (f", {unsure} inconclusive (more inputs would decide)" if unsure else "")
            + f"; degraded rate {rate:.0%} ({skipped + errors} of {n} could not produce a "
            "verdict)")
