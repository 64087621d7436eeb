"""Tasks by name: the built-in ones and those installed packages register.

A task is one module with a class following ``tasks.base.Task`` and one ``TaskSpec`` here (or
in the ``pytest_quantgate.tasks`` entry-point group). The spec holds what is needed before a
session exists (at configuration and collection): the name, the checks judged from one run,
whether the model must have labels. Nothing here imports numpy, the tasks or the session: the
configuration validates task names with it, and the tasks name the configuration's type.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskSpec:
    name: str
    factory: str  # "module:Class", called with the session
    builtin_checks: tuple[str, ...]  # judged together from one run of a backend
    labels: bool  # the model's config must name its classes (id2label)
    eval_format: str = "an existing JSONL file"  # what eval and calibration must be
    help: str = ""


BUILTIN: dict[str, TaskSpec] = {spec.name: spec for spec in (
    TaskSpec("text-classification", "pytest_quantgate.tasks.classification:Classification",
             ("logits", "topk", "accuracy"), labels=True,
             help="a sequence classifier: logits, top-k and accuracy against labelled texts"),
    TaskSpec("causal-lm", "pytest_quantgate.tasks.language_model:CausalLM",
             ("ppl", "next-token"), labels=False,
             eval_format="an existing text or JSONL file",
             help="a causal language model: perplexity and next-token agreement on a corpus"),
    TaskSpec("embeddings", "pytest_quantgate.tasks.embeddings:Embeddings",
             ("embedding", "retrieval"), labels=False,
             eval_format="an existing text or JSONL file",
             help="a sentence embedder: cosine to the reference's vectors, and the nearest "
                  "neighbours retrieval sees"),
)}


@functools.cache
def all_tasks() -> dict[str, TaskSpec]:
    """Built-in tasks plus those registered by installed packages' entry points."""
    from .extensions import registered

    tasks = dict(BUILTIN)
    for spec in registered("pytest_quantgate.tasks", TaskSpec):
        tasks.setdefault(spec.name, spec)
    return tasks


def task_spec(name: str) -> TaskSpec:
    """The spec of a configured task (config validation has checked the name)."""
    return all_tasks()[name]


def create_task(name: str, session: Any) -> Any:
    """A ``tasks.base.Task`` bound to ``session`` (typed there: see GateSession.task)."""
    module, _, attr = task_spec(name).factory.partition(":")
    return getattr(importlib.import_module(module), attr)(session)
