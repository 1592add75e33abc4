#!/bin/bash
# The one command for a lent GPU machine (docs/performance.md, "On a GPU machine without fairseq"), after
# `bash benchmarks/device_wheels.sh` here: installs the carried wheels, prints the versions it runs with, runs
# the tests whose arithmetic differs on a GPU with their tensors there (FLALLM_TEST_DEVICE=cuda: the
# optimizer steps, torch's fused kernels included, and the device-side augmentation's warp), then
# `benchmarks/run_all.py --device cuda`. Everything it prints also lands in $OUT (run.log, tests.log, run_all.md,
# run_all.json), which the device tool brings back.
#
#   run(command="bash benchmarks/device_run.sh", carry=[".whl"], timeout_s=600)
#
# Environment: OUT [the device tool's; else ./device_out]; WHEELS [.whl]; RUN_ALL_ARGS [''] more options of
# run_all.py (e.g. '--only overhead,loader'); RUN_ALL_TIMEOUT [420] seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device_out}; mkdir -p "$OUT"
WHEELS=${WHEELS:-.whl}
exec > >(tee "$OUT/run.log") 2>&1
export PYTHONUNBUFFERED=1
if ! ls "$WHEELS"/*.whl > /dev/null 2>&1; then
  echo "device_run.sh: no wheels in $WHEELS: run 'bash benchmarks/device_wheels.sh' here first, then carry $WHEELS"
  exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  "$WHEELS"/*.whl || exit 2
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 - <<'EOF' || exit 2
import cv2, fairseq, torch, torchvision
print(f"python {__import__('sys').version.split()[0]}, torch {torch.__version__}, torchvision "
      f"{torchvision.__version__}, fairseq {fairseq.__version__}, opencv {cv2.__version__}")
print(f"device: {torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s)")
EOF
status=0
FLALLM_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider tests/test_foreach_optim.py \
  tests/test_device_transforms.py 2>&1 | tee "$OUT/tests.log" || status=1
timeout "${RUN_ALL_TIMEOUT:-420}" python3 benchmarks/run_all.py --device cuda --out "$OUT/run_all" \
  ${RUN_ALL_ARGS:-} || status=1
exit $status
