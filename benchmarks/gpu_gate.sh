#!/usr/bin/env bash
# The gate with the GPU backends on a CUDA machine (docs/benchmarks.md, "GPU backends").
# Usage: benchmarks/gpu_gate.sh OUT_DIR   (run from the repository root; python3 with torch+CUDA)
set -u -o pipefail
out=${1:?usage: benchmarks/gpu_gate.sh OUT_DIR}
mkdir -p "$out"
root=$PWD
export PYTHONPATH=$root/src:$root PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 - <<'PY'
import importlib, platform
print("python", platform.python_version())
for m in ("torch", "transformers", "onnx", "onnxruntime", "tokenizers", "numpy", "tensorrt"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as exc:
        print(m, "MISSING:", type(exc).__name__, str(exc)[:80])
import onnxruntime as ort, torch
print("ort providers", ort.get_available_providers())
print("torch cuda", torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0))
PY
} 2>&1 | tee "$out/env.txt"
python3 -m fixtures.build_demo /tmp/qg-demo 2>&1 | tail -3
cat > /tmp/qg-demo/pyproject.toml <<'TOML'
[tool.quantgate]
task = "text-classification"
model = "models/headline-bert"
reference = "torch-fp32"
backends = ["torch-cuda-fp32", "torch-cuda-fp16", "torch-cuda-bf16", "torch-fp16", "onnx-fp32",
            "onnx-cuda", "onnx-cuda-fp16", "onnx-trt", "trt-fp16"]
eval = "data/golden.jsonl"
calibration = "data/calibration.jsonl"
max_length = 128
json = "reports/gpu.json"
TOML
(cd /tmp/qg-demo && python3 -m pytest -p pytest_quantgate.plugin --quantgate -q -rs \
   -p no:cacheprovider --rootdir . 2>&1 | tee "$out/gate.log")
cp /tmp/qg-demo/reports/gpu.json "$out/gpu.json" 2>/dev/null
python3 -m pytest tests/backends -q -p no:cacheprovider -k "cuda" -rs 2>&1 | tail -30 \
  | tee "$out/conformance.log"
