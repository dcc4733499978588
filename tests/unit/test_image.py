"""The worker image installs from a hash-locked lock file that pins every dependency of pyproject.toml, from one
slim base for both variants; the CPU variant's split of the lock keeps everything but torch's CUDA packages."""

import re
import sys
import tomllib

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "requirements"))
from cpu_lock import split  # noqa: E402

LOCK = (ROOT / "requirements" / "worker.lock").read_text()


def locked_versions(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\", text, flags=re.MULTILINE))


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_pins_every_dependency_with_hashes_and_the_tested_torch():
    versions = {normal(name): version for name, version in locked_versions(LOCK).items()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in project:
        assert normal(re.split(r"[<>=!~\[ ]", requirement)[0]) in versions, requirement
    pins = dict(
        line.split("==")
        for line in (ROOT / "requirements" / "pins.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {name: versions[name] for name in pins} == pins
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.split("\n", 2)[2])
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


def test_the_cpu_split_drops_only_torch_and_its_cuda_packages():
    rest, torch_pins = split(LOCK)
    assert torch_pins.split() == ["torch==2.14.1", "torchvision==0.29.1"]
    kept, every = set(locked_versions(rest)), set(locked_versions(LOCK))
    dropped = every - kept
    assert {"torch", "torchvision", "triton"} <= dropped
    assert all(name in ("torch", "torchvision", "triton") or name.startswith(("nvidia-", "cuda-")) for name in dropped)
    assert {"kornia", "numpy", "boto3", "sympy", "filelock"} <= kept  # torch's CPU dependencies stay locked


def test_one_slim_base_and_hash_checked_installs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE) == ["python:3.11-slim-bookworm"]
    installs = [line for line in dockerfile.splitlines() if "pip install" in line and "--index-url" not in line]
    assert all("--require-hashes" in line or line.rstrip().endswith(". \\") for line in installs), installs
