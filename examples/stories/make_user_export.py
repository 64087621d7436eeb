"""Write models/story-gpt2-corrupted.onnx: the demo LM exported to ONNX, then one weight
corrupted the way a faulty conversion step can (the sign of the last block's MLP output
projection flipped). The demo loads it as a user-supplied backend; the gate must fail it on
``ppl_delta`` while every shape, name and dtype still looks right.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_quantgate.backends.onnx_export import export_model

HERE = Path(__file__).resolve().parent
CORRUPTED = "mlp.c_proj.weight"  # of the last block: the one the logits see most directly


def corrupt(onnx_file: Path) -> str:
    """Negate the last initializer whose name ends with CORRUPTED; returns its name."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_file))
    names = [i.name for i in proto.graph.initializer if i.name.endswith(CORRUPTED)]
    if not names:
        raise SystemExit(f"no initializer named *{CORRUPTED} in {onnx_file}")
    for init in proto.graph.initializer:
        if init.name == names[-1]:
            init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init).astype(np.float32),
                                                  init.name))
    onnx.save(proto, str(onnx_file))
    return names[-1]


def main() -> int:
    model_dir = HERE / "models" / "story-gpt2"
    out = HERE / "models" / "story-gpt2-corrupted.onnx"
    stamp = out.with_suffix(".stamp")
    source = (model_dir / ".fixture-stamp").read_text() if (model_dir / ".fixture-stamp").exists() \
        else ""
    if out.exists() and stamp.exists() and stamp.read_text() == source:
        print(f"up to date: {out.relative_to(HERE)}")
        return 0
    export_model(model_dir, out, exporter="legacy", opset=17,
                 input_names=("input_ids", "attention_mask"), max_length=128, task="causal-lm")
    name = corrupt(out)
    stamp.write_text(source)
    print(f"wrote {out.relative_to(HERE)} ({name} negated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
