"""Session end on the controller (or in a serial run): take the run snapshot once, then write
the JSON and HTML reports and the baseline from it. The terminal summary renders it after."""

from __future__ import annotations

from pathlib import Path

from .state import State


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
