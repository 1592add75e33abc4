#!/bin/bash
# Wheels for a lent GPU machine (docs/performance.md, "On a GPU machine without fairseq"): its image has Python 3.12 with
# PyTorch, torchvision, sentencepiece, sacrebleu, OpenCV and pytest, but not fairseq nor what fairseq and this
# project need beside them, and it cannot download. Run this here (it downloads from PyPI) before the device
# call; benchmarks/device_run.sh installs the wheels there. The pins are the project's own: ve-fairseq's from the
# Makefile, the others from requirements.txt.
#
#   bash benchmarks/device_wheels.sh [DIR]      # DIR [.whl], ignored by git; then carry it
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$HERE/.whl}
PY=${PYTHON:-$HERE/.venv/bin/python}
PYVER=${DEVICE_PYTHON_VERSION:-3.12}
pin() {  # NAME FILE: NAME==VERSION as FILE pins it
  local p; p=$(grep -o -m1 "^$1==[0-9.]*" "$2" || true)
  [ -n "$p" ] || { echo "device_wheels.sh: no pin of $1 in $2" >&2; exit 2; }
  echo "$p"
}
FAIRSEQ=$(grep -o -m1 've-fairseq==[0-9.]*' "$HERE/Makefile" || true)
[ -n "$FAIRSEQ" ] || { echo "device_wheels.sh: no pin of ve-fairseq in $HERE/Makefile" >&2; exit 2; }
# binary wheels for the device's Python; the ones a lent machine's image lacks: fairseq, its configuration
# (hydra-core, omegaconf), bitarray, and zstandard (frame packs)
BINARY=("$FAIRSEQ")
for name in bitarray zstandard hydra-core omegaconf; do
  p=$(pin "$name" "$HERE/requirements.txt") || exit 2
  BINARY+=("$p")
done
ANTLR=$(pin antlr4-python3-runtime "$HERE/requirements.txt") || exit 2
mkdir -p "$DIR"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$DIR" "${BINARY[@]}"
# antlr4-python3-runtime (omegaconf's parser) is published as a source archive only: pure Python, built here
"$PY" -m pip wheel -q --no-deps -w "$DIR" "$ANTLR"
ls -1 "$DIR"
du -sh "$DIR"
