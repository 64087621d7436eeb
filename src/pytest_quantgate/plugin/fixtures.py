"""Fixtures: ``quantgate``, ``quantgate_backend`` and ``quantgate_reference``.

Implementations are imported inside the fixtures, so loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .state import state

if TYPE_CHECKING:
    from ..checker import BackendHandle, Checker


@pytest.fixture
def quantgate(request: pytest.FixtureRequest) -> Checker:
    """Check texts against the reference on every configured backend.

    Thresholds come from ``@pytest.mark.quantgate(...)`` over the defaults::

        @pytest.mark.quantgate(max_abs_logit=0.05, topk=5, topk_overlap=0.8)
        def test_nhs_headline(quantgate):
            quantgate.check("Cybersecurity breach exposes NHS patient records", expect="health")

    In a test that also takes ``quantgate_backend``, only that backend is checked.
    """
    from ..checker import Checker
    from .marker import read_marker

    gate = state(request.config).session()
    backends = None
    if "quantgate_backend" in request.fixturenames:
        backends = [request.getfixturevalue("quantgate_backend").name]
    return Checker(gate, read_marker(request.node), backends)


@pytest.fixture
def quantgate_backend(request: pytest.FixtureRequest) -> BackendHandle:
    """One configured backend (the test is parametrised over all of them, ids = names)::

        def test_agrees(quantgate_backend, quantgate_reference):
            text = "Storm floods coastal towns"
            assert quantgate_backend.top_k(text, 1)[0][0] == quantgate_reference.top_k(text, 1)[0][0]

    A backend whose runtime is not installed is skipped with the reason.
    """
    return _handle(request, request.param)


@pytest.fixture
def quantgate_reference(request: pytest.FixtureRequest) -> BackendHandle:
    """The reference backend (``reference`` in [tool.quantgate]): ``.predict(texts)``,
    ``.top_k(text, k)``, ``.labels``, ``.info``."""
    gate = state(request.config).session()
    return _handle(request, gate.config.reference)


def _handle(request: pytest.FixtureRequest, name: str) -> BackendHandle:
    from ..checker import BackendHandle
    from ..errors import BackendUnavailable

    gate = state(request.config).session()
    try:
        gate.runner(name)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    return BackendHandle(gate, name)
