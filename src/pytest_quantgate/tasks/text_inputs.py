"""What a task whose eval inputs are tokenised texts shares: a classifier and an embedder.

Both keep their texts tokenised once (``encoded``), build their artifacts from the same feeds
(two texts as the example, the calibration texts in batches), time the same typical batch, and
probe and replay rows the same way. Only what the texts are (labelled headlines, or a corpus and
its queries) and what a pass makes of a batch (logits, or pooled vectors) differ: the task
classes keep those. One base, so a fix to a feed reaches both tasks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..backends.base import Runner
from ..backends.registry import BuildContext
from .base import Probe, Session
from .batching import Batch, batches, latency_feed, make_feed
from .text_classification import Shapes, spread_probe
from .tokenizer import Encoded

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class TextInputs:
    """The shared half of a text-input task; a subclass sets ``name`` and ``encoded``."""

    name: str

    def __init__(self, session: Session) -> None:
        self.session = session
        self.config = session.config
        self.batch_cache: dict[Shapes, list[Batch]] = {}  # eval-set batches, padded once
        self._feeds: dict[tuple[Shapes, int], dict[str, np.ndarray]] = {}  # timed batches

    @property
    def encoded(self) -> list[Encoded]:
        raise NotImplementedError

    @property
    def probe_items(self) -> Sequence[Encoded]:
        """The texts a diagnostic probe picks from (all eval texts unless a task narrows)."""
        return self.encoded

    @property
    def text_length(self) -> int:
        return int(self.config.max_length)

    @property
    def truncate_at(self) -> int:
        return int(self.config.max_length)

    def calibration_texts(self) -> list[str]:
        """The calibration file's texts, as the task reads its files."""
        raise NotImplementedError

    def text_build_context(self, num_labels: int) -> BuildContext:
        cfg, session = self.config, self.session

        def example_feed() -> dict[str, np.ndarray]:
            items = self.encoded[:2]
            return make_feed(items, session.encoder.pad_id, max(len(i) for i in items))

        def calibration_batches() -> Iterator[dict[str, np.ndarray]]:
            if cfg.calibration is None:
                return
            for batch in batches(session.encoder.encode(self.calibration_texts()),
                                 batch_size=cfg.batch_size, padding="longest",
                                 pad_id=session.encoder.pad_id, max_length=cfg.max_length):
                yield batch.feed

        return BuildContext(
            model_dir=cfg.model, model_hash=session.model_hash, cache=session.cache,
            max_length=cfg.max_length, num_labels=num_labels,
            vocab_size=session.facts.vocab_size, input_names=INPUT_NAMES,
            example_feed=example_feed, calibration_batches=calibration_batches,
            calibration_hash=session.data_hashes.get("calibration"), base_dir=cfg.base_dir,
            task=self.name)

    # -- feeds for latency and the diagnostic checks -----------------------------------------
    def timed_feed(self, shapes: Shapes, size: int) -> dict[str, np.ndarray]:
        """The typical batch of the eval texts (batching.latency_feed), built once per shapes
        and size: every latency item at that size asks for it twice (its backend's and the
        reference's)."""
        cfg, key = self.config, (shapes, size)
        if key not in self._feeds:
            self._feeds[key] = latency_feed(
                self.encoded, size, padding=cfg.padding, pad_id=self.session.encoder.pad_id,
                max_length=cfg.max_length, static_length=shapes.static_length,
                static_batch=shapes.static_batch)
        return dict(self._feeds[key])  # a runner may replace an entry; the arrays are shared

    def probe(self, runner: Runner, size: int) -> Probe:
        """Up to ``size`` eval texts spread over the token lengths, padded as ``runner``
        needs."""
        rows, feed = spread_probe(self.probe_items, runner, size,
                                  pad_id=self.session.encoder.pad_id,
                                  max_length=self.config.max_length)
        return Probe(rows, feed)

    def rows_feed(self, rows: Sequence[int]) -> dict[str, np.ndarray] | None:
        items = [self.encoded[i] for i in rows]
        return make_feed(items, self.session.encoder.pad_id, max(len(i.ids) for i in items))
