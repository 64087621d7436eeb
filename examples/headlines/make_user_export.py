"""Write models/headline-bert-swapped.onnx: the demo model exported with two inputs mislabelled,
as an export with keyword inputs can do by mistake. The demo loads it as a user-supplied backend.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_quantgate.backends.onnx_export import export_classifier

HERE = Path(__file__).resolve().parent


def main() -> int:
    model_dir = HERE / "models" / "headline-bert"
    out = HERE / "models" / "headline-bert-swapped.onnx"
    stamp = out.with_suffix(".stamp")
    source = (model_dir / ".fixture-stamp").read_text() if (model_dir / ".fixture-stamp").exists() \
        else ""
    if out.exists() and stamp.exists() and stamp.read_text() == source:
        print(f"up to date: {out.relative_to(HERE)}")
        return 0
    export_classifier(model_dir, out, exporter="legacy", opset=17,
                      input_names=("input_ids", "attention_mask", "token_type_ids"),
                      max_length=128, swap_names=("attention_mask", "token_type_ids"))
    stamp.write_text(source)
    print(f"wrote {out.relative_to(HERE)} (attention_mask and token_type_ids swapped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
