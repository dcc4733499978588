#!/usr/bin/env bash
# The GPU check, prepared to run on a bare CUDA machine in one go (about five minutes on one H200-class GPU):
# bench of paper and ref32 (optimized, plain, bf16), a short paper-architecture digits 32x32 training run with
# evaluation, and a resume check; prints one JSON line (also written to $OUT/gpu_check.json when OUT is set).
#
# That machine's python3 has torch, torchvision, tensorboard and scikit-learn; the other dependencies travel as
# wheels in .whl/ (fetch them here first with scripts/fetch_gpu_wheels.sh).
#   usage: scripts/gpu_check.sh [cuda|cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/clel-site .whl/*.whl
    export PYTHONPATH="/tmp/clel-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >&2
python3 -m runner gpu_check --device "${1:-cuda}" | tee "${OUT:-/tmp}/gpu_check.json"
