"""Hypothesis runs for the adversarial check: generate a corpus, then search and shrink.

Two runs with one seed. ``generate`` collects the texts Hypothesis draws (nothing is scored yet,
so the caller can score them in batches). ``search`` runs the same strategy with the same seed as
a property: texts already scored are answered from the caller's memo, so the generation phase
costs no inference; only what the database replays and what the shrinker tries run one by one.
The example database lives in the quantgate cache, one folder per backend, so a failure found
once is tried first on the next run, and a backend whose folder holds nothing has nothing to
replay (``saved``: the check then skips the search when the corpus has no failure either). Both
runs draw from one seed alone (``_seed_only``): Hypothesis would also mix in constants from the
source of whatever local modules the process has imported.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from ..config import Config


@dataclass(frozen=True)
class Plan:
    """How one session searches: the seed and profile, sizes and where failures are kept."""

    seed: int
    profile: str  # "ci" (derandomised: fixed seed) or "dev" (a fresh seed unless one is set)
    max_examples: int
    budget: float  # seconds per backend
    database: Path  # the folder that holds one example database per backend
    fixed: bool = False  # the seed is fixed (ci profile, or adversarial_seed set): cacheable


def plan_for(config: Config, environ: dict[str, str] | None = None) -> Plan:
    """Resolve the profile (``auto``: ``ci`` when ``CI`` is set and not false) and the seed."""
    env = os.environ if environ is None else environ
    profile = config.adversarial_profile
    if profile == "auto":
        profile = "ci" if env.get("CI", "").strip().lower() not in ("", "0", "false", "no") \
            else "dev"
    seed = config.adversarial_seed
    if seed is None:
        seed = 0 if profile == "ci" else int.from_bytes(os.urandom(4), "little")
    return Plan(seed, profile, config.adversarial_max_examples, float(config.adversarial_budget),
                config.cache_dir / "hypothesis",
                fixed=profile == "ci" or config.adversarial_seed is not None)


def database_for(plan: Plan, backend: str) -> Path:
    """The backend's own example database folder. One folder per backend (not one key per
    backend in a shared folder) lets ``saved`` answer without importing Hypothesis or knowing
    how it names its keys; the name is readable and cannot collide (backend names are free
    text: a hash of the name follows a filesystem-safe slug)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", backend).strip("._")[:48] or "backend"
    return plan.database / f"{slug}-{hashlib.sha256(backend.encode()).hexdigest()[:8]}"


def saved(database: Path) -> bool:
    """Whether the example database folder holds anything to replay. Hypothesis removes an
    entry once it no longer fails (and its key folder with the last one), so a backend that
    never failed, or stopped failing, has none; anything it wrote counts (when in doubt, replay)."""
    try:
        return any(p.is_file() for p in database.rglob("*"))
    except OSError:
        return True


def _settings(max_examples: int, **kwargs: Any) -> Any:
    from hypothesis import HealthCheck, Verbosity, settings

    return settings(max_examples=max_examples, deadline=None, verbosity=Verbosity.quiet,
                    suppress_health_check=list(HealthCheck), print_blob=False, **kwargs)


@contextmanager
def _seed_only() -> Iterator[None]:
    """Hypothesis (6.13x on) draws, now and then, constants it finds in the source of the local
    modules the process has imported. Which those are depends on what ran before: a
    pytest-xdist worker that had run the calibration check drew another corpus from the same
    seed than a serial run (on the demo's all-ops static INT8, 97 instead of 100 of 100 inputs
    failing), and so would a -k selection or a user's conftest. The pool is held empty while
    we run, and Hypothesis's cache of permitted constants is cleared on both sides so the
    user's own Hypothesis tests get theirs back. Without that pool (older versions), nothing
    to hold."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants

        original = providers._get_local_constants
        cache = providers.CONSTANTS_CACHE.cache
    except (ImportError, AttributeError):
        yield
        return
    empty = Constants()
    cache.clear()
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()


def generate(strategy: SearchStrategy[str], *, seed: int, max_examples: int) -> list[str]:
    """The texts Hypothesis draws from ``strategy`` with ``seed``, in order (no database)."""
    from hypothesis import Phase, given
    from hypothesis import seed as with_seed

    texts: list[str] = []

    def collect(text: str) -> None:
        texts.append(text)

    run = with_seed(seed)(_settings(max_examples, database=None, phases=[Phase.generate])(
        given(strategy)(collect)))
    with _seed_only():
        run()
    return texts


class _Counterexample(AssertionError):
    pass


@dataclass
class Outcome:
    """What a search found: every text it tried, those that failed, and the minimal one."""

    tried: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)
    error: str = ""  # Hypothesis's own complaint (e.g. a flaky property), first line

    @property
    def minimal(self) -> str | None:
        # Hypothesis replays the shrunk example last, to report it.
        return self.failing[-1] if self.failing else None


def search(strategy: SearchStrategy[str], holds: Callable[[str], bool], *, seed: int,
           max_examples: int, database: Path, key: str) -> Outcome:
    """Run ``holds`` as a property over ``strategy``; replay saved failures first, shrink new ones."""
    from hypothesis import given
    from hypothesis.database import DirectoryBasedExampleDatabase

    outcome = Outcome()

    def prop(text: str) -> None:
        outcome.tried.append(text)
        if not holds(text):
            outcome.failing.append(text)
            raise _Counterexample(text)

    # ``@seed`` would turn the database off; the attribute it sets, without that, keeps both.
    prop._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    run = _settings(max_examples, database=DirectoryBasedExampleDatabase(str(database)))(
        given(strategy)(prop))
    # One database entry per backend and search: the digest is mixed into Hypothesis's key.
    run.hypothesis.inner_test._hypothesis_internal_add_digest = key.encode()  # type: ignore[attr-defined]
    try:
        with _seed_only():
            run()
    except _Counterexample:
        pass
    except Exception as exc:  # Flaky and friends: keep what was found, say what happened
        outcome.error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    return outcome
