"""Repository-level conftest: puts the repo root on sys.path so ``fixtures`` (the demo data and
model builders) is importable from the tests and benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
