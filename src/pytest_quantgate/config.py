"""Typed, validated configuration: ``[tool.quantgate]`` in pyproject.toml, then CLI overrides.

Every key is described once in ``FIELDS``; the CLI options (``--quantgate-<key>``), the README
table and validation all come from that list. Paths in pyproject.toml are relative to that file;
paths given on the command line are relative to the directory pytest was started in.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends.onnx_precision import InferredPrecision, infer_undeclared
from .backends.registry import BUILTIN, BackendDecl, all_kinds, declare
from .compare.tolerances import Tolerance, validate_tolerances
from .errors import ConfigError, problem
from .task_registry import all_tasks
from .thresholds import validate as validate_thresholds

PADDINGS = ("longest", "max_length")  # defined here, not in tasks.batching: no numpy import

TASKS = tuple(all_tasks())  # built-in tasks and installed packages' (task_registry.py)


@dataclass(frozen=True)
class Field:
    """One configuration key: type, default, help, and how a CLI string is parsed."""

    key: str
    kind: str  # "str" | "path" | "int" | "list" | "choice" | "bool" | "ints"
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None

    @property
    def option(self) -> str:
        return "--quantgate-" + self.key.replace("_", "-")

    def parse_cli(self, text: str) -> Any:
        if self.kind == "int":
            try:
                return int(text)
            except ValueError:
                raise ConfigError(problem(f"option {self.option}", text, "a whole number",
                                          f"e.g. {self.option}={self.default}")) from None
        if self.kind == "list":
            return [part.strip() for part in text.split(",") if part.strip()]
        if self.kind == "ints":
            try:
                return [int(part) for part in text.split(",") if part.strip()]
            except ValueError:
                raise ConfigError(problem(f"option {self.option}", text,
                                          "whole numbers separated by commas",
                                          f"e.g. {self.option}=1,32")) from None
        return text


FIELDS: tuple[Field, ...] = (
    Field("task", "choice", "text-classification", "what the model does", TASKS),
    Field("model", "path", None, "Hugging Face model directory of the reference model"),
    Field("reference", "str", "torch-fp32", "backend every other backend is compared with"),
    Field("backends", "list", None, "backends to gate (default: every built-in CPU backend)"),
    Field("eval", "path", None, 'golden JSONL set, one {"text": ..., "label": ...} per line '
          "(causal-lm: a plain-text corpus, one document per paragraph, or JSONL texts)"),
    Field("calibration", "path", None, "JSONL texts static INT8 is calibrated on (causal-lm: "
          "plain text or JSONL, like eval)"),
    Field("max_length", "int", 128, "tokens per text after truncation", minimum=1),
    Field("padding", "choice", "longest", "pad each batch to its longest text, or to max_length",
          PADDINGS),
    Field("batch_size", "int", 32, "texts (causal-lm: windows) per inference call", minimum=1),
    Field("window", "int", 128, "causal-lm: tokens per perplexity window (at most the model's "
          "context)", minimum=2),
    Field("stride", "int", 64, "causal-lm: tokens between window starts; each token is scored "
          "once, with window - stride tokens of context at least", minimum=1),
    Field("pooling", "choice", "auto", "embeddings: how token vectors become one vector per "
          "text (auto: as the model's sentence-transformers 1_Pooling/config.json says, else "
          "mean)", ("auto", "mean", "cls", "max")),
    Field("normalize", "bool", None, "embeddings: L2-normalise the vectors (default: when the "
          "model's modules.json has a Normalize module)"),
    Field("queries", "path", None, 'embeddings: queries, one {"text": ..., "relevant": [corpus '
          "indices or ids]} per line or plain text (default: a sample of the corpus's texts)"),
    Field("cache_dir", "path", ".quantgate-cache", "where built artifacts and reference outputs "
          "are kept"),
    # 14: a branch left for a week or two still finds its artifacts; a model that changes each
    # week keeps two or three generations (fp32, fp16 and int8 of a base-size model: ~1 GB each).
    Field("cache_max_age_days", "int", 14, "days a cache entry (built artifact, reference "
          "outputs) may go unused before a run removes it at its end (0: never remove)",
          minimum=0),
    Field("json", "path", None, "write the JSON report here"),
    Field("expect_fail", "list", [], "backends known to fail: their items are xfail(strict)"),
    Field("worst", "int", 5, "worst inputs shown per failing check", minimum=0),
    Field("latency", "bool", False, "time each backend through pytest-benchmark: one "
          "quantgate::<backend>::latency[bN] item per batch size"),
    Field("latency_batch_sizes", "ints", [1, 32], "batch sizes the latency items time",
          minimum=1),
    Field("latency_rounds", "int", 20, "timed rounds per latency item, at least", minimum=2),
    Field("latency_seconds", "int", 2, "seconds of rounds per latency item: more rounds than "
          "latency_rounds while they fit (0: latency_rounds exactly)", minimum=0),
    Field("latency_warmup", "int", 2, "untimed warm-up rounds before them", minimum=0),
    Field("compare", "path", None, "baseline to compare with: a quantgate JSON report or a "
          "pytest-benchmark saved run; a regression fails its item"),
    Field("strict", "bool", False, "a backend that cannot run here (runtime missing) fails "
          "instead of being skipped"),
    Field("inconclusive", "choice", "skip", "what a check whose sample cannot decide becomes "
          "(uncertainty.py): skip (visible, not failed), pass, or fail",
          ("skip", "pass", "fail")),
    Field("html", "path", None, "write the self-contained HTML report here"),
    Field("inspect", "list", [], "texts whose softmax and logits the HTML report charts for "
          "every backend (besides the worst inputs)"),
    # docs/adversarial.md says where each default comes from (measured on the demo).
    Field("adversarial_max_examples", "int", 200, "generated inputs per backend's adversarial "
          "item (0 turns the item off)", minimum=0),
    Field("adversarial_budget", "int", 30, "seconds an adversarial item may search and shrink "
          "before it reports what it has", minimum=1),
    Field("adversarial_seed", "int", None, "seed of the adversarial search (default: a fresh "
          "one per run, or 0 under the ci profile)", minimum=0),
    Field("adversarial_profile", "choice", "auto", "ci: derandomised (fixed seed); dev: a fresh "
          "seed per run; auto: ci when the CI environment variable is set", ("auto", "dev", "ci")),
)
FIELD_BY_KEY = {f.key: f for f in FIELDS}
TABLE_KEYS = ("thresholds", "backend", "tolerances")


@dataclass(frozen=True)
class Config:
    """The validated configuration of one run."""

    task: str
    model: Path
    reference: str
    backends: tuple[str, ...]
    eval: Path
    calibration: Path | None
    max_length: int
    padding: str
    batch_size: int
    cache_dir: Path
    json: Path | None
    expect_fail: tuple[str, ...]
    worst: int
    declared: Mapping[str, BackendDecl]
    thresholds: Mapping[str, Mapping[str, float | int]] = field(default_factory=dict)
    base_dir: Path = Path(".")
    source: str = "defaults"
    latency: bool = False
    latency_batch_sizes: tuple[int, ...] = (1, 32)
    latency_rounds: int = 20
    latency_seconds: int = 2
    latency_warmup: int = 2
    compare: Path | None = None
    strict: bool = False
    inconclusive: str = "skip"  # the pytest outcome of an undecided check
    html: Path | None = None
    inspect: tuple[str, ...] = ()
    tolerances: Mapping[str, Tolerance | float] = field(default_factory=dict)
    adversarial_max_examples: int = 200
    adversarial_budget: int = 30
    adversarial_seed: int | None = None
    adversarial_profile: str = "auto"
    window: int = 128
    stride: int = 64
    pooling: str = "auto"  # embeddings (tasks/embeddings.py)
    normalize: bool | None = None
    queries: Path | None = None
    cache_max_age_days: int = 14  # cache_pruning.prune, at the end of a session (plugin/finish.py)
    # Declared in [[tool.quantgate.backend]] but left out of an explicit `backends` list: not
    # gated, and the run says so in its header (a declaration alone used to be silently unused).
    unselected: tuple[str, ...] = ()
    # User ONNX files (kind "onnx") gated without a declared precision: what their graph says
    # (the header and the JSON report's config tell it; declared precisions are not here).
    inferred_precision: Mapping[str, InferredPrecision] = field(default_factory=dict)

    def decl(self, name: str) -> BackendDecl:
        return self.declared[name]


def tolerances_of(table: Mapping[str, Any] | None, where: str) -> dict[str, Tolerance | float]:
    """The validated ``tolerances`` of a ``[tool.quantgate]`` table (``where`` names the table).

    Apart from ``load`` so that ``quantgate compare`` reads the key exactly as the plugin does
    without the rest of the configuration (which needs the model and eval files to exist)."""
    return validate_tolerances((table or {}).get("tolerances", {}), f"{where}: tolerances")


def load(table: Mapping[str, Any] | None, *, base_dir: Path, cli: Mapping[str, Any],
         cli_dir: Path, source: str) -> Config:
    """Validate the table and the CLI overrides (already parsed, None = not given) together."""
    table = dict(table or {})
    where = f"{source} [tool.quantgate]"
    unknown = sorted(set(table) - set(FIELD_BY_KEY) - set(TABLE_KEYS))
    if unknown:
        raise ConfigError(problem(f"{where}: key", unknown[0],
                                  f"one of {sorted([*FIELD_BY_KEY, *TABLE_KEYS])}",
                                  "fix the spelling or remove it"))
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}  # where each value came from, for messages
    for f in FIELDS:
        if cli.get(f.key) is not None:
            origin[f.key] = f"option {f.option}"
            values[f.key] = _check(f, cli[f.key], origin[f.key], cli_dir)
        elif f.key in table:
            origin[f.key] = f"{where}: {f.key}"
            values[f.key] = _check(f, table[f.key], origin[f.key], base_dir)
        else:
            origin[f.key] = f"{where}: {f.key}"
            values[f.key] = _check(f, f.default, f.key, base_dir) if f.default is not None else None

    task = values["task"]
    for required, hint in (("model", 'model = "models/my-model"'), ("eval", 'eval = "data/golden.jsonl"')):
        if values[required] is None:
            raise ConfigError(problem(f"{where}: {required}", None, "a path",
                                      f"add {hint} to [tool.quantgate] or pass "
                                      f"{FIELD_BY_KEY[required].option}"))
    if not values["model"].is_dir():
        raise ConfigError(problem(f"{origin['model']}: model directory", str(values["model"]),
                                  "an existing Hugging Face model directory",
                                  "build or download the model first, or fix the path"))
    for key in ("eval", "calibration", "queries"):
        if values[key] is not None and not values[key].is_file():
            raise ConfigError(problem(f"{origin[key]}: file", str(values[key]),
                                      all_tasks()[task].eval_format,
                                      "fix the path or create the file"))

    if values["stride"] > values["window"]:
        raise ConfigError(problem(f"{origin['stride']}", values["stride"],
                                  f"at most window ({values['window']})",
                                  "a larger stride would leave tokens unscored; lower it"))
    declared = _declared_backends(table.get("backend", []), where)
    backends = values["backends"]
    if backends is None:
        backends = [k for k in BUILTIN if "-" in k and k != values["reference"]
                    and BUILTIN[k].extra not in ("gpu", "tensorrt")  # GPU kinds: by name only
                    and task in BUILTIN[k].tasks
                    and (values["calibration"] is not None or k != "onnx-int8-static")]
        backends += [name for name in declared
                     if name not in backends and name != values["reference"]]
    names = [values["reference"], *backends]
    for name in names:
        if name not in declared:
            if name not in BUILTIN or BUILTIN[name].precision is None:
                known = sorted([*(k for k in BUILTIN if BUILTIN[k].precision), *declared])
                raise ConfigError(problem(f"{where}: backend", name, f"one of {known}",
                                          "fix the name, or declare it in a [[tool.quantgate."
                                          "backend]] table with name and kind"))
            declared[name] = declare(name, name, {}, where)
    for name in names:
        kind = all_kinds()[declared[name].kind]
        if task not in kind.tasks:
            able = sorted(k for k, spec in all_kinds().items() if task in spec.tasks)
            raise ConfigError(problem(f"{where}: kind of backend {name!r} for task {task!r}",
                                      kind.kind, f"a kind that runs the task: one of {able}",
                                      "remove it from backends, or set the task it runs"))
    if not backends:
        raise ConfigError(problem(origin["backends"], [], "at least one backend to compare with "
                                  f"the reference {values['reference']!r}",
                                  "name one (e.g. --quantgate-backends onnx-fp32), or drop the "
                                  "empty list"))
    for name in backends:
        kind = all_kinds()[declared[name].kind]
        if kind.needs_calibration and values["calibration"] is None:
            raise ConfigError(problem(f"{where}: backend {name!r} ({kind.kind})",
                                      "no calibration set", "calibration = a JSONL file of texts "
                                      "like the traffic (its activation ranges are calibrated on "
                                      "them)", 'add calibration = "data/calibration.jsonl", or '
                                      "remove the backend"))
    if values["reference"] in backends:
        raise ConfigError(problem(f"{where}: backends", values["reference"],
                                  "backends other than the reference", "remove the reference "
                                  "from backends (it is what the others are compared with)"))
    if len(set(backends)) != len(backends):
        raise ConfigError(problem(f"{where}: backends", backends, "each backend once",
                                  "remove the duplicate"))
    # A backend named here need not be gated in this run (`--quantgate-backends` may narrow the
    # list), but it must exist: a typo would silently expect nothing.
    known = sorted({*declared, *(k for k in BUILTIN if BUILTIN[k].precision)})
    for name in values["expect_fail"]:
        if name not in known:
            raise ConfigError(problem(f"{origin['expect_fail']}", name, f"one of {known}",
                                      "fix the name, or declare the backend"))
    thresholds = _threshold_tables(table.get("thresholds", {}), where)
    for pattern in thresholds:  # a table that matches nothing loosens or tightens nothing
        if not any(fnmatch.fnmatchcase(name, pattern) for name in [*known, values["reference"]]):
            raise ConfigError(problem(f"{where}: thresholds.{pattern}", pattern,
                                      "a backend name or glob that matches a backend (e.g. "
                                      f"{known[0]!r}, \"*-int8-*\")" if known else "a backend name",
                                      "fix the pattern or remove the table"))
    inferred = infer_undeclared(declared, names, table.get("backend", []), base_dir,
                                values["cache_dir"])
    chosen = values["backends"] is not None  # an explicit list: declared extras are not gated
    unselected = tuple(n for n in declared if chosen and n not in backends
                       and n != values["reference"])
    return Config(
        task=task, model=values["model"], reference=values["reference"],
        backends=tuple(backends), eval=values["eval"], calibration=values["calibration"],
        max_length=values["max_length"], padding=values["padding"],
        batch_size=values["batch_size"], cache_dir=values["cache_dir"], json=values["json"],
        expect_fail=tuple(values["expect_fail"]), worst=values["worst"], declared=declared,
        thresholds=thresholds, base_dir=base_dir, source=source,
        latency=values["latency"], latency_batch_sizes=tuple(values["latency_batch_sizes"]),
        latency_rounds=values["latency_rounds"], latency_seconds=values["latency_seconds"],
        latency_warmup=values["latency_warmup"],
        compare=values["compare"], strict=values["strict"],
        inconclusive=values["inconclusive"],
        html=values["html"], inspect=tuple(values["inspect"]),
        tolerances=tolerances_of(table, where),
        adversarial_max_examples=values["adversarial_max_examples"],
        adversarial_budget=values["adversarial_budget"],
        adversarial_seed=values["adversarial_seed"],
        adversarial_profile=values["adversarial_profile"],
        window=values["window"], stride=values["stride"], unselected=unselected,
        pooling=values["pooling"], normalize=values["normalize"], queries=values["queries"],
        cache_max_age_days=values["cache_max_age_days"], inferred_precision=inferred,
    )


def _check(f: Field, value: Any, where: str, base: Path) -> Any:
    expect = {"str": "a string", "path": "a path string", "int": "a whole number",
              "list": "a list of strings", "choice": f"one of {list(f.choices)}",
              "bool": "true or false",
              "ints": f"a non-empty list of whole numbers >= {f.minimum or 0}"}[f.kind]
    fix = f"e.g. {f.key} = {f.default!r}" if f.default not in (None, []) else "see the README"
    if f.kind == "bool":
        fix = f"write {f.key} = true or {f.key} = false"
    ok: Callable[[Any], bool] = {
        "str": lambda v: isinstance(v, str) and bool(v),
        "path": lambda v: isinstance(v, (str, Path)) and bool(str(v)),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool)
        and (f.minimum is None or v >= f.minimum),
        "list": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "choice": lambda v: v in f.choices,
        "bool": lambda v: isinstance(v, bool),
        "ints": lambda v: isinstance(v, list) and bool(v) and all(
            isinstance(x, int) and not isinstance(x, bool) and x >= (f.minimum or 0) for x in v),
    }[f.kind]
    if not ok(value):
        if f.kind == "int" and f.minimum is not None:
            expect = f"a whole number >= {f.minimum}"
        raise ConfigError(problem(where, value, expect, fix))
    if f.kind == "path":
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)
    return list(value) if f.kind in ("list", "ints") else value


def _declared_backends(entries: Any, where: str) -> dict[str, BackendDecl]:
    if not isinstance(entries, list):
        raise ConfigError(problem(f"{where}: backend", type(entries).__name__,
                                  "an array of tables [[tool.quantgate.backend]]",
                                  "write each as [[tool.quantgate.backend]] with name and kind"))
    out: dict[str, BackendDecl] = {}
    for i, entry in enumerate(entries):
        here = f"{where}: backend #{i + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not isinstance(entry.get("kind"), str):
            raise ConfigError(problem(here, entry, "a table with string keys name and kind",
                                      'add name = "my-backend" and kind = "onnx"'))
        name = entry["name"]
        if name in out:
            raise ConfigError(problem(here, name, "a unique backend name", "rename one of them"))
        options = {k: v for k, v in entry.items() if k not in ("name", "kind")}
        out[name] = declare(name, entry["kind"], options, here)
    return out


def _threshold_tables(tables: Any, where: str) -> dict[str, dict[str, float | int]]:
    if not isinstance(tables, dict):
        raise ConfigError(problem(f"{where}: thresholds", tables, 'tables like [tool.quantgate.'
                                  'thresholds."*-int8-*"]', "key each table by a backend glob"))
    out = {}
    for pattern, values in tables.items():
        if not isinstance(values, dict):
            raise ConfigError(problem(f"{where}: thresholds.{pattern}", values,
                                      "a table of threshold keywords",
                                      f'write [tool.quantgate.thresholds."{pattern}"]'))
        out[pattern] = validate_thresholds(values, f"{where}: thresholds.{pattern}")
    return out
