# The worker image: `python -m runner worker` runs one run of experiments.toml, checkpointing to S3.
#   GPU (default): docker build -t clel-runner:TAG .                        CUDA 13.0 runtime + torch's CUDA wheels
#   CPU (kind):    docker build --build-arg VARIANT=cpu -t clel-runner:TAG-cpu .   python slim + CPU torch
# `make image` (VARIANT=cuda|cpu) tags it with the git revision. Needs BuildKit (Docker 23+ default).
ARG VARIANT=cuda

FROM nvidia/cuda:13.0.0-runtime-ubuntu24.04 AS base-cuda
ARG DEBIAN_FRONTEND=noninteractive
# The base image is pinned; Ubuntu's archive keeps only the newest security build of a package, so exact apt
# versions would stop the build as soon as one is superseded (scripts/scan_cluster.sh reports this as skipped).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

FROM python:3.11-slim-bookworm AS base-cpu

# base-cuda or base-cpu, the two stages above (each pinned by its tag); hadolint cannot resolve a stage named by an ARG.
# hadolint ignore=DL3006
FROM base-${VARIANT}
ARG VARIANT
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/runner
RUN python3 -m venv /opt/venv
WORKDIR /app

# Dependencies first (their own layer): the pins of pyproject.toml; CPU torch from PyTorch's CPU index.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
    && if [ "$VARIANT" = cpu ]; then \
         grep -E '^(torch|torchvision)[<>=!~]' /tmp/requirements.txt > /tmp/torch.txt \
         && pip install --index-url https://download.pytorch.org/whl/cpu -r /tmp/torch.txt; \
       fi \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/*.txt

# The project (the worker reads experiments.toml from its working directory).
COPY README.md* experiments.toml ./
COPY runner ./runner
RUN pip install --no-deps . \
    && rm -rf runner build ./*.egg-info \
    && python -m runner list > /dev/null

RUN useradd --uid 10001 --user-group --create-home --home-dir /home/runner --shell /usr/sbin/nologin runner
USER 10001:10001

ENTRYPOINT ["python", "-m", "runner", "worker"]
