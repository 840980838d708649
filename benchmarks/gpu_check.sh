#!/usr/bin/env bash
# The GPU check of the fused ops and the training step, for one CUDA GPU (sized for an H200: under 8 minutes).
#
#   bash benchmarks/gpu_check.sh            # on a machine with CUDA
#   GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh   # the same stages on the CPU at toy sizes (checks the script)
#
# 1. The op tests on CUDA tensors with the compiled kernels (TRITON_INTERPRET=0; the interpreter cases skip).
# 2. The fused-op microbenchmarks (Triton vs eager vs torch.compile; drift logits at C=100 and C=1000; QuickGELU at
#    the ViT-B/16 MLP sizes) -> benchmarks/results/ops-<device>.json.
# 3. One training step of ViT-B/16 (QuickGELU) x 1000 classes in float32 and amp_bf16, beside the peers' design,
#    with peak memory -> benchmarks/results/train_step-<device>-1000.json.
# Each stage has its own time limit so a hang in one still leaves the others' results.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH="python${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY=PASSIVE
RESULTS=benchmarks/results
mkdir -p "$RESULTS"
status=0

if [[ "${GPU_CHECK_SMOKE:-0}" == "1" ]]; then
  DEVICE=cpu; TAG=cpu-smoke; OPS_K="ViT-B-16 and reference and not C1000"; TRAIN="--classes 20 --batch 2 --steps 1"
else
  DEVICE=cuda; TAG=cuda; OPS_K="ViT-B-16"; TRAIN="--classes 1000 --batch 16 --steps 3"
  $PY - <<'PY' || exit 1
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check.sh: no CUDA device (GPU_CHECK_SMOKE=1 runs the CPU smoke version)")
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PY
fi

stage() {  # stage NAME SECONDS CMD...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@"
  local rc=$?
  echo "== $name: rc=$rc in $((SECONDS - t0))s"
  [[ $rc -eq 0 ]] || status=1
}

# Only the cuda cases: the others assume the interpreter (CPU tensors on the Triton path) and run in CI. In the
# smoke run they are collected and skip, which checks this stage's wiring.
stage "op tests on CUDA tensors" 90 env TRITON_INTERPRET=0 $PY -m pytest tests/ops -q -p no:cacheprovider \
  -k cuda --junitxml="$RESULTS/ops-tests-$TAG.xml"
stage "fused-op microbenchmarks" 270 env TRITON_INTERPRET=0 $PY -m pytest benchmarks/test_bench_ops.py -q \
  -p no:cacheprovider -k "$OPS_K" --benchmark-enable --benchmark-max-time=0.2 --benchmark-min-rounds=5 \
  --benchmark-json="$RESULTS/ops-$TAG.json"
# shellcheck disable=SC2086
stage "train step ViT-B/16 ($TRAIN)" 120 $PY benchmarks/bench_train_step.py --device "$DEVICE" $TRAIN \
  --variants peers mmlop mmlop-bf16 --name "train_step-$TAG-1000"
exit $status
