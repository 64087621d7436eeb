"""A quantgate report built on the fake backend from an eval set full of script and markup."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

# Each payload sets window.__xss if it ever runs.
SCRIPT = "<script>window.__xss=1;alert(1)</script>"
IMG = '"><img src=x onerror="window.__xss=2;alert(1)">'
SVG = "</text></svg><svg onload=\"window.__xss=3\">"
LABELS = ["World", SCRIPT, "Business & <b>Co</b>"]
WORDS = {0: "war treaty minister election".split(), 1: "match goal team cup".split(),
         2: "market shares profit bank".split()}
NAMED = f"breaking {IMG} news"

BACKENDS = """
[[tool.quantgate.backend]]
name = "ref"
kind = "fake"

[[tool.quantgate.backend]]
name = "same"
kind = "fake"

[[tool.quantgate.backend]]
name = "swapped"
kind = "fake"
swap_inputs = true

[[tool.quantgate.backend]]
name = "drifty<img src=x onerror=alert(1)>"
kind = "fake"
drift = 0.5
"""


def build_hostile_report(root: Path) -> dict[str, Any]:
    """The JSON report (as stored and read back) of a gate over hostile texts and labels."""
    from pytest_quantgate.backends.fake_model import write_fake_model
    from pytest_quantgate.config import load
    from pytest_quantgate.project_file import read_table
    from pytest_quantgate.run_record import take_snapshot
    from pytest_quantgate.session import GateSession

    rng = random.Random(0)
    rows = []
    for i in range(60):
        words = [rng.choice(WORDS[i % 3]) for _ in range(rng.randint(3, 7))]
        extra = [SCRIPT, IMG, SVG][i % 3] if i % 4 == 0 else ""
        rows.append({"text": " ".join(words) + " " + extra, "label": LABELS[i % 3]})
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "golden.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    write_fake_model(root / "model", LABELS, [r["text"] for r in rows] + [NAMED])
    (root / "pyproject.toml").write_text(
        '[tool.quantgate]\nmodel = "model"\neval = "data/golden.jsonl"\nreference = "ref"\n'
        f'backends = ["same", "swapped", "drifty<img src=x onerror=alert(1)>"]\n'
        f"inspect = [{json.dumps(NAMED)}, {json.dumps(rows[0]['text'])}]\n" + BACKENDS)
    config = load(read_table(root / "pyproject.toml"), base_dir=root, cli={}, cli_dir=root,
                  source="pyproject.toml")
    gate = GateSession(config)
    try:
        for name in config.backends:
            gate.results(name)
        return json.loads(json.dumps(take_snapshot(gate).to_dict(), default=str))
    finally:
        gate.close()
