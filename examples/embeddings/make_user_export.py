"""Write two sentence-transformers-style ONNX exports of the demo embedder that pool inside
the graph (output ``sentence_embedding``), each broken the way a hand-written export breaks:
``models/headline-embedder-cls.onnx`` returns the [CLS] vector where the model mean-pools, and
``models/headline-embedder-permuted.onnx`` returns the right vector with its dimensions
reordered. Every name, shape and dtype looks right; the demo gates both as user backends and
the gate must fail them with the cause.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository's fixtures package

from fixtures.embedder import export_sentence_model  # noqa: E402

EXPORTS = {"headline-embedder-cls.onnx": {"pooling": "cls"},
           "headline-embedder-permuted.onnx": {"permute": True}}


def main() -> int:
    model_dir = HERE / "models" / "headline-embedder"
    stamp_file = model_dir / ".fixture-stamp"
    source = stamp_file.read_text() if stamp_file.exists() else ""
    for name, broken in EXPORTS.items():
        out = HERE / "models" / name
        stamp = out.with_suffix(".stamp")
        if out.exists() and stamp.exists() and stamp.read_text() == source:
            print(f"up to date: {out.relative_to(HERE)}")
            continue
        export_sentence_model(model_dir, out, **broken)  # type: ignore[arg-type]
        stamp.write_text(source)
        print(f"wrote {out.relative_to(HERE)} ({broken})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
