"""A pytest plugin for ``compare_noise.py``: make one backend slower by a share of its own time.

``QUANTGATE_SLOWDOWN=onnx-int8-dynamic:0.3`` makes every call of that backend's runner take 30%
longer, by spinning (not sleeping) after the runtime returns, so the extra time is CPU work like
the rest. Load it with ``-p slowdown`` and ``benchmarks/`` on PYTHONPATH. For measurement only.
"""

from __future__ import annotations

import os
import time
from typing import Any


def pytest_configure(config: Any) -> None:
    spec = os.environ.get("QUANTGATE_SLOWDOWN", "")
    if not spec:
        return
    name, _, share_text = spec.rpartition(":")
    share = float(share_text)
    from pytest_quantgate.backends.base import Runner

    original = Runner.infer

    def infer(self: Runner, feed: Any) -> Any:
        if self.name != name:
            return original(self, feed)
        start = time.perf_counter()
        out = original(self, feed)
        until = time.perf_counter() + share * (time.perf_counter() - start)
        while time.perf_counter() < until:
            pass
        return out

    Runner.infer = infer  # type: ignore[method-assign]
