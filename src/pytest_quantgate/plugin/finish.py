"""Session end on the controller (or in a serial run): take the run snapshot once, then write
the JSON and HTML reports and the baseline from it, then prune the cache. The terminal summary
renders it after."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from .state import State

PRUNED = "cache_pruned"  # st.outcomes: the summary's one line when entries were removed


def finish(st: State) -> None:
    from ..snapshot import merge

    if st.parts:  # pytest-xdist: what the workers sent
        from dataclasses import replace

        from .xdist import inspected

        snapshot = merge(st.parts)
        snapshot = replace(snapshot, inspected=inspected(st, snapshot))
    elif st.gate is not None and st.gate.judged():  # (the start-up check made a session)
        from ..run_record import take_snapshot

        snapshot = take_snapshot(st.gate)
    else:
        return  # no gate item ran
    cmp = st.compare
    if cmp is not None:
        cmp.manifest = cmp.manifest or snapshot.manifest
        snapshot = snapshot.with_comparison(cmp.comparison(), cmp.regressed())
    st.snapshot = snapshot
    if st.config is not None and st.config.json:
        _write(st, "json", Path(st.config.json))
    if st.config is not None and st.config.html:
        _write(st, "html", Path(st.config.html))
    if cmp is not None and cmp.update:
        from .comparing import accept

        try:
            accepted = accept(st)
        except OSError as exc:
            st.outcomes["baseline_error"] = _cannot("baseline", cmp.path, exc)
        else:
            if accepted is not None:
                st.outcomes["baseline"] = str(accepted)


def _write(st: State, kind: str, path: Path) -> None:
    assert st.snapshot is not None
    try:
        if kind == "json":
            from ..report.json_report import write_report

            write_report(st.snapshot, path)
        else:
            from ..report.html import write_html

            write_html(st.snapshot.to_dict(), path)
    except OSError as exc:
        st.outcomes[f"{kind}_error"] = _cannot(f"{kind.upper()} report", path, exc)
    else:
        st.outcomes[kind] = str(path)


def _cannot(what: str, path: Path, exc: OSError) -> str:
    return (f"quantgate {what}: could not write {str(path)!r} ({exc.strerror or exc}); "
            "expected a writable file path; fix the path or its folder's permissions")


def prune_cache(st: State, exitstatus: int | pytest.ExitCode) -> None:
    """Remove the cache entries unused for ``cache_max_age_days`` (cache_pruning.prune).

    Here because this is the one process that outlives every use of the cache in the session:
    the serial run, or the pytest-xdist controller once its workers are down (a worker never
    gets here; each stamped what it used). Only a session that used quantgate prunes (the gate,
    or this process's fixtures), so an unrelated ``pytest tests/unit`` in the repository never
    removes what the next gate run would have used. An interrupted run ends now, not after
    deleting; and pruning is housekeeping: whatever goes wrong is logged, never the run's
    failure.
    """
    cfg = st.config
    if cfg is None or cfg.cache_max_age_days <= 0 or not (st.enabled or st.gate is not None):
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return
    from ..cache_pruning import prune

    try:
        pruned = prune(cfg.cache_dir, cfg.cache_max_age_days)
    except Exception:  # a bug here must not turn a green run into an INTERNALERROR
        logging.getLogger(__name__).warning("quantgate cache: pruning %s failed", cfg.cache_dir,
                                            exc_info=True)
        return
    if pruned.removed:
        st.outcomes[PRUNED] = pruned.line(cfg.cache_max_age_days)
