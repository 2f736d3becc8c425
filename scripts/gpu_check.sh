#!/usr/bin/env bash
# Kernel checks on a fresh GPU machine, from the repository root (about 5 minutes):
#   1. print the GPU (nvidia-smi);
#   2. get an environment: a venv with the project's pins for the kernel tests
#      (torch, triton, numpy, pandas, pyarrow, pytest, read from pyproject.toml; the PyPI torch wheel
#      is a CUDA build), or, when no package index can be reached, the machine's own python with
#      whatever torch/triton it has (versions printed; they may differ from the pins);
#   3. pytest tests/test_kernels{,_rope_gather,_gather_gemm,_dynamo_joint,_halfhop,_neighbour_mining}.py tests/test_dynamo_generate.py
#      (not the interpreter tests, which CI runs) with CUDA visible (Triton vs reference on CUDA, 2:4
#      semi-structured matmul, DynaMo generation through the fused joint builder);
#   4. python -m repro.bench kernels --out "${OUT:-.}/kernels.parquet".
# Exits non-zero on any failure.  Logs go next to the Parquet file.
#
# Environment: PYTHON (default python3.11, else python3), OUT (output folder, default .),
# GPU_CHECK_INSTALL=auto|pins|system (default auto: pins when an index answers, else system),
# GPU_CHECK_VENV (default /tmp/repro-gpu-venv).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR="${OUT:-.}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="${GPU_CHECK_VENV:-/tmp/repro-gpu-venv}"
MODE="${GPU_CHECK_INSTALL:-auto}"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" # the package, also when it is not pip-installed
unset TRITON_INTERPRET REPRO_KERNELS

echo "== GPU"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || nvidia-smi
else
    echo "warning: nvidia-smi not found"
fi

# The pins this check needs, taken from pyproject.toml so they cannot drift.
PINS=$("$PY" - <<'EOF'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = project["dependencies"] + project["optional-dependencies"]["dev"]
wanted = {"torch", "triton", "numpy", "pandas", "pyarrow", "pytest"}
print(" ".join(d for d in deps if re.split(r"[<>=!~\[; ]", d)[0].lower() in wanted))
EOF
)
echo "== environment (pins: $PINS)"

RUN_PY="$PY"
if [[ "$MODE" == "auto" ]]; then
    probe=$(mktemp -d)
    if timeout 30 "$PY" -m pip download --retries 0 --timeout 5 --no-deps --quiet --dest "$probe" "$(tr ' ' '\n' <<<"$PINS" | grep '^pytest==')" \
        >/dev/null 2>&1; then
        MODE=pins
    else
        MODE=system
        echo "warning: no package index answered; using $PY and its own packages"
    fi
    rm -rf "$probe"
fi
case "$MODE" in
pins)
    "$PY" -m venv "$VENV"
    RUN_PY="$VENV/bin/python"
    # shellcheck disable=SC2086
    timeout 420 "$RUN_PY" -m pip install --quiet --disable-pip-version-check $PINS
    "$RUN_PY" -m pip install --quiet --disable-pip-version-check --no-deps -e . ||
        echo "warning: editable install failed; using PYTHONPATH=src"
    ;;
system) ;;
*)
    echo "error: GPU_CHECK_INSTALL=$MODE is not auto, pins or system" >&2
    exit 2
    ;;
esac

"$RUN_PY" - <<'EOF'
import sys
import torch
try:
    import triton
    tv = triton.__version__
except ImportError:
    tv = "not importable"
print(f"python {sys.version.split()[0]} ({sys.executable}); torch {torch.__version__} (CUDA {torch.version.cuda}); triton {tv}")
if not torch.cuda.is_available():
    sys.exit("error: torch sees no CUDA device")
print(f"device: {torch.cuda.get_device_name()} (capability {torch.cuda.get_device_capability()})")
EOF

TESTS="tests/test_kernels.py tests/test_kernels_rope_gather.py tests/test_kernels_gather_gemm.py tests/test_kernels_dynamo_joint.py tests/test_kernels_halfhop.py tests/test_kernels_neighbour_mining.py tests/test_dynamo_generate.py"
# The interpreter tests run on CPU in CI; on the GPU machine its own Triton/NumPy may not match the pins.
echo "== pytest $TESTS -k 'not interpreter'"
# shellcheck disable=SC2086
set +e
"$RUN_PY" -m pytest -q -p no:cacheprovider -rs -k "not interpreter" $TESTS 2>&1 | tee "$OUT_DIR/test_kernels.log"
tests_rc=${PIPESTATUS[0]}
set -e

echo "== python -m repro.bench kernels"
"$RUN_PY" -m repro.bench kernels --out "$OUT_DIR/kernels.parquet" 2>&1 | tee "$OUT_DIR/bench_kernels.log"
if [[ $tests_rc -ne 0 ]]; then
    echo "gpu_check: pytest failed (exit $tests_rc)" >&2
    exit "$tests_rc"
fi
echo "gpu_check: OK"
