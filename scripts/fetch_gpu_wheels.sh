#!/usr/bin/env bash
# Download, into .whl/ (git-ignored), the wheels scripts/gpu_check.sh installs on a GPU machine whose python3
# (3.12, x86-64) has torch, torchvision, tensorboard and scikit-learn but not the rest of what the runner imports.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d .whl kornia kornia_rs fire termcolor pydantic pydantic_core annotated_types typing_inspection \
    typing_extensions pytorch-fid boto3 botocore s3transfer jmespath "python-dateutil<3" six "urllib3<3" pyyaml tqdm
ls .whl
