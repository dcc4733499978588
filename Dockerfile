# The worker image: `python -m runner worker` runs one run of experiments.toml, checkpointing to S3.
#   GPU (default): docker build -t clel-runner:TAG .                                 torch's CUDA wheels
#   CPU (kind):    docker build --build-arg VARIANT=cpu -t clel-runner:TAG-cpu .      torch's CPU wheels
# One slim Python base for both: the GPU driver comes from the node, and torch's PyPI wheels carry the CUDA
# user-space libraries (no CUDA base image, so CUDA ships once). Every dependency comes from the lock file
# requirements/worker.lock (exact versions and sha256 hashes; `make lock` refreshes it), so two builds of one
# commit install the same bytes. The CPU variant takes torch and torchvision, at the locked versions, from
# PyTorch's CPU index (a tenth of the size; that index is not hash-locked) and everything else from the lock.
# `make image` (VARIANT=cuda|cpu) tags it with the git revision. Sizes per variant: docs/KUBERNETES.md, "The image".
FROM python:3.11-slim-bookworm
ARG VARIANT=cuda
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/runner
RUN python3 -m venv /opt/venv
WORKDIR /app

# Dependencies first (their own layer, reused while the lock is unchanged).
COPY requirements/worker.lock requirements/cpu_lock.py ./requirements/
RUN if [ "$VARIANT" = cpu ]; then \
         python requirements/cpu_lock.py requirements/worker.lock /tmp/rest.lock /tmp/torch.txt \
         && pip install --index-url https://download.pytorch.org/whl/cpu --no-deps -r /tmp/torch.txt \
         && pip install --no-deps --require-hashes -r /tmp/rest.lock; \
    else \
         pip install --no-deps --require-hashes -r requirements/worker.lock; \
    fi \
    && rm -rf /tmp/*.lock /tmp/*.txt requirements

# The project (the worker reads experiments.toml from its working directory).
COPY pyproject.toml README.md* experiments.toml ./
COPY runner ./runner
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf runner build ./*.egg-info \
    && python -m runner list > /dev/null

RUN useradd --uid 10001 --user-group --create-home --home-dir /home/runner --shell /usr/sbin/nologin runner
USER 10001:10001

ENTRYPOINT ["python", "-m", "runner", "worker"]
