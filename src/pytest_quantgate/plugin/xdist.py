"""pytest-xdist: each worker sends the snapshot of what it judged; the controller merges them.

Workers hand their records to the controller through ``config.workeroutput`` (pytest-cov's
pattern), so remote ``--tx`` workers need no shared file system. The payload is JSON text: the
run snapshot's ``to_dict``, the baseline comparison's deltas and the worker's notes. The
controller then prints the table and writes the reports and the baseline exactly as a serial
run does (``plugin/finish.py``).

Under ``-n`` the gate items of one backend go to one worker (``BackendScheduling``): a backend
is built and loaded once, not once per worker that gets one of its checks.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pytest

from .state import State

if TYPE_CHECKING:
    from ..snapshot import RunSnapshot

KEY = "quantgate"


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def send(config: pytest.Config, st: State) -> None:
    """On a worker at session end: its share of the run, for the controller."""
    from ..inspected import inspect_data
    from ..run_record import take_snapshot

    if st.gate is None or not st.gate.judged():
        return  # this worker ran no gate item (every worker collects them all)
    deltas = {nodeid: [asdict(d) for d in ds]
              for nodeid, ds in (st.compare.deltas if st.compare else {}).items()}
    notes = {k: v for k, v in st.outcomes.items() if not k.startswith("quantgate::")}
    try:  # the inspected inputs are chosen on the controller, from every worker's logits
        data = inspect_data(st.gate)
    except Exception:  # noqa: BLE001: take_snapshot tries again and records what failed
        data = None
    snapshot = take_snapshot(st.gate, data)
    config.workeroutput[KEY] = json.dumps(  # type: ignore[attr-defined]
        {"snapshot": snapshot.to_dict(), "deltas": deltas, "notes": notes,
         "inspect": data.to_payload() if data is not None else None}, default=str)


def receive(workeroutput: dict[str, Any], st: State) -> None:
    """On the controller, as each worker goes down: keep its snapshot and deltas."""
    from ..compare.judge import Delta
    from ..snapshot import RunSnapshot as Snapshot

    text = workeroutput.get(KEY)
    if not text:
        return
    payload = json.loads(text)
    st.parts.append(Snapshot.from_dict(payload["snapshot"]))
    if payload.get("inspect"):
        st.inspect_parts.append(payload["inspect"])
    if st.compare is not None:
        for nodeid, deltas in (payload.get("deltas") or {}).items():
            st.compare.deltas[nodeid] = [Delta(**d) for d in deltas]
    for key, value in (payload.get("notes") or {}).items():
        st.outcomes.setdefault(key, value)


def backend_scope(nodeid: str) -> str:
    """``quantgate::<backend>`` for a gate item; any other test is its own scope."""
    parts = nodeid.split("::")
    return "::".join(parts[:2]) if parts[0] == "quantgate" and len(parts) > 2 else nodeid


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist load`` (what ``-n`` picks) with a backend's gate items kept on one worker."""
    from xdist.scheduler import LoadScopeScheduling

    class BackendScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return backend_scope(nodeid)

    return BackendScheduling(config, log)


def inspected(st: State, snapshot: RunSnapshot) -> tuple[dict[str, Any], ...]:
    """The inspected inputs chosen from every worker's logits, as a serial run chooses them."""
    from ..inspected import InspectData, choose

    if not st.inspect_parts:
        return snapshot.inspected
    data = InspectData.from_payload(st.inspect_parts[0])
    for part in st.inspect_parts[1:]:
        data = data.merged(InspectData.from_payload(part))
    failing = [n for n, b in snapshot.backends.items() if b.verdict != "PASS"]
    return tuple(choose(data, failing, list(snapshot.backends)))
