"""Shared state of the backend conformance suite: one tiny model, one artifact cache and one
runner per kind, built once per session.

The tiny model (``fixtures.build_demo.build(size="tiny")``) is trained once and kept under the
repository's git-ignored ``.quantgate-test-cache/`` so ``make test`` does not retrain it;
artifacts go to a fresh per-session directory so the suite sees one cold build and one warm
load of every kind.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the top-level conftest does this too; do not depend on it
    sys.path.insert(0, str(ROOT))

from pytest_quantgate.backends import registry  # noqa: E402
from pytest_quantgate.backends.base import Runner  # noqa: E402
from pytest_quantgate.backends.registry import BackendDecl, BuildContext  # noqa: E402
from pytest_quantgate.cache import ArtifactCache, hash_path  # noqa: E402
from pytest_quantgate.errors import BackendUnavailable  # noqa: E402

MODEL_CACHE = ROOT / ".quantgate-test-cache" / "backends-tiny"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
MAX_LENGTH = 64
USER_ONNX = "user-onnx"  # the "onnx" kind, fed the fp32 export as a user's file (tests use it)


@dataclass
class Demo:
    """The tiny model, its encoder and the texts the suite feeds."""

    model_dir: Path
    golden: list[dict[str, Any]]
    calibration: Path
    encoder: Any
    num_labels: int

    def feed(self, texts: list[str], length: int | None = None) -> dict[str, np.ndarray]:
        """Named int64 arrays padded to the longest text (or to ``length``) with [PAD]."""
        from pytest_quantgate.tasks.batching import make_feed

        items = self.encoder.encode(texts)
        longest = max(len(i) for i in items)
        return make_feed(items, self.encoder.pad_id, max(longest, length or 0))


@dataclass
class Built:
    """A runner as first created (cold cache) and what that cost."""

    runner: Runner
    create_seconds: float


@dataclass
class Backends:
    """Builds each kind at most once per session, keeps it active, closes all at the end."""

    ctx: BuildContext
    built: dict[str, Built] = field(default_factory=dict)

    def decl(self, kind: str) -> BackendDecl:
        if kind == USER_ONNX:
            from pytest_quantgate.backends.onnx_export import MODEL_FILE, fp32_export

            defaults = registry.BUILTIN["onnx-fp32"].options
            export = fp32_export(self.ctx, defaults["exporter"].default, defaults["opset"].default)
            return registry.declare(USER_ONNX, "onnx", {"path": str(export.path / MODEL_FILE)},
                                    "conformance")
        return registry.declare(kind, kind, {}, "conformance")

    def registry_kind(self, kind: str) -> registry.BackendKind:
        return registry.BUILTIN["onnx" if kind == USER_ONNX else kind]

    def skip_if_unavailable(self, kind: str) -> None:
        missing = registry.missing_requirements(self.registry_kind(kind))
        if missing:
            pytest.skip(f"{kind} needs {', '.join(missing)}, which is not installed here")

    def create(self, kind: str) -> tuple[Runner, float]:
        """A fresh, inactive runner and the seconds ``create_runner`` took."""
        self.skip_if_unavailable(kind)
        decl = self.decl(kind)
        start = time.perf_counter()
        try:
            runner = registry.create_runner(decl, self.ctx)
        except BackendUnavailable as exc:  # no GPU, no GPU provider: the factory says why
            pytest.skip(str(exc))
        return runner, time.perf_counter() - start

    def get(self, kind: str) -> Runner:
        """The session's active runner of ``kind`` (built on first use)."""
        if kind not in self.built:
            runner, seconds = self.create(kind)
            self.built[kind] = Built(runner.activate(), seconds)
        return self.built[kind].runner

    def close(self) -> None:
        for built in self.built.values():
            built.runner.close()


def _build_model() -> Any:
    """The tiny demo model and data, built once and reused across sessions."""
    from fixtures.build_demo import build

    return build(MODEL_CACHE, size="tiny")


@pytest.fixture(scope="session")
def demo() -> Demo:
    pytest.importorskip("tokenizers")
    from pytest_quantgate.tasks.tokenizer import TextEncoder

    built = _build_model()
    model_dir = Path(built.model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    golden = [json.loads(line) for line in Path(built.golden).read_text().splitlines()
              if line.strip()]
    return Demo(model_dir=model_dir, golden=golden, calibration=Path(built.calibration),
                encoder=TextEncoder.from_model_dir(model_dir, MAX_LENGTH),
                num_labels=len(config.get("id2label") or {}) or 2)


@pytest.fixture(scope="session")
def build_context(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> BuildContext:
    from pytest_quantgate.tasks.batching import batches

    texts = [json.loads(line)["text"] for line in demo.calibration.read_text().splitlines()
             if line.strip()]

    def calibration_batches() -> Iterator[dict[str, np.ndarray]]:
        for batch in batches(demo.encoder.encode(texts), batch_size=32, padding="longest",
                             pad_id=demo.encoder.pad_id, max_length=MAX_LENGTH):
            yield batch.feed

    config = json.loads((demo.model_dir / "config.json").read_text())
    return BuildContext(
        model_dir=demo.model_dir, model_hash=hash_path(demo.model_dir),
        cache=ArtifactCache(tmp_path_factory.mktemp("artifacts")), max_length=MAX_LENGTH,
        num_labels=demo.num_labels, vocab_size=int(config["vocab_size"]), input_names=INPUT_NAMES,
        example_feed=lambda: demo.feed([g["text"] for g in demo.golden[:2]]),
        calibration_batches=calibration_batches, calibration_hash=hash_path(demo.calibration),
        base_dir=demo.model_dir.parent,
    )


@pytest.fixture(scope="session")
def backends(build_context: BuildContext) -> Iterator[Backends]:
    state = Backends(build_context)
    yield state
    state.close()
