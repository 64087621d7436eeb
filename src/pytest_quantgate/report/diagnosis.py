"""A failed check, told as a diagnosis: what broke, by how much, on which inputs."""

from __future__ import annotations

from ..records import CheckResult, Worst
from .text import safe_text


def diagnosis(result: CheckResult) -> str:
    lines = [f"{result.nodeid} {result.verdict}: {result.reason}"]
    lines += [f"  cause: {c}" for c in result.details.get("causes", ()) if c not in result.reason]
    lines += [f"  note: {n}" for n in result.details.get("notes", ())]
    for m in result.measures:
        if m.passed and m.threshold is None:
            lines.append(f"  measured: {m.name} {m.value:.4g}")
        elif m.passed:
            lines.append(f"  ok: {m.name} {m.value:.4g} (threshold {m.op} {m.threshold:.4g})")
    if result.worst:
        lines.append(f"  worst inputs ({len(result.worst)} shown; reference | {result.backend}):")
        lines += [_worst(w) for w in result.worst]
    return "\n".join(safe_text(line) for line in lines)  # texts and labels are user data


def _worst(w: Worst) -> str:
    label = f"  [label {w.label}]" if w.label is not None else ""
    return (f"    {_short(w.text)!r}{label}  {w.metric} {w.score:.3g}\n"
            f"      reference {_top(w.reference)} | backend {_top(w.backend)}")


def _top(pairs: tuple[tuple[str, float], ...]) -> str:
    return ", ".join(f"{name} {prob:.3f}" for name, prob in pairs)


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
