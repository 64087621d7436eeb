"""Where the reference backend's outputs on the eval set are kept on disk, by content.

The key hashes everything the outputs depend on (model, eval set, tokenizer, shapes, the
reference backend's declaration, the library versions, and what the task adds), so a later run
with the same inputs reads the outputs instead of running the reference again, and any change
misses the cache. What is stored in the folder is the task's (``Task.save_reference``).
``corpus_parts`` is the same key without the eval set, for the reference's outputs on other
texts (the adversarial check's fixed-seed corpus, adversarial/corpus.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import hash_parts, mark_used

if TYPE_CHECKING:
    from .tasks.base import Session, Task


def _run_parts(session: Session, task: Task) -> dict[str, Any]:
    """What the reference's outputs on any texts depend on, besides the texts."""
    from .manifest import package_versions

    cfg, decl = session.config, session.config.decl(session.config.reference)
    parts = {"model": session.model_hash, "max_length": cfg.max_length, "padding": cfg.padding,
             "batch_size": cfg.batch_size, "backend": [decl.kind, dict(decl.options)],
             "tokenizer": session.encoder.source, "versions": package_versions()}
    return {**parts, **task.reference_parts()}


def reference_parts(session: Session, task: Task) -> dict[str, Any]:
    # (the same dict as before corpus_parts existed: existing cache entries stay valid)
    return {**_run_parts(session, task), "eval": session.data_hashes["eval"]}


def corpus_parts(session: Session, task: Task) -> dict[str, Any]:
    """The key of the reference's outputs on texts the caller names by their own parts: the
    eval set's key without the eval file, with the task (a classification task's own parts are
    empty, to keep the eval-set keys as they were)."""
    return {**_run_parts(session, task), "task": session.config.task}


def reference_dir(session: Session, task: Task) -> Path:
    """The folder of the reference's outputs, stamped as used (cache.mark_used): the session
    asks once, before it loads or writes them, so the stamp that pruning reads is refreshed on
    every hit; a folder that does not exist yet is stamped by nothing and is as old as its
    files (cache_pruning.last_used)."""
    folder = session.config.cache_dir / "reference" / hash_parts(reference_parts(session, task))[:24]
    mark_used(folder)
    return folder
