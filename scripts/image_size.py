"""Estimate the worker image's size per variant from the wheels requirements/worker.lock installs.

For each locked package, the wheel that pip picks for CPython 3.11 on manylinux x86_64 is the PyPI file whose
sha256 is among the lock's hashes; its size comes from PyPI's JSON simple index (PEP 691). Installed sizes are
about 1.5-2x the wheels (they are zip files); the base image adds its own. Needs network access to pypi.org.

    python scripts/image_size.py [requirements/worker.lock]
"""

import json
import re
import sys
import urllib.request

CUDA_ONLY = re.compile(r"^(triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)$")
TAGS = ("cp311", "py3", "py2.py3", "abi3")


def locked(path: str) -> dict[str, set[str]]:
    """package name -> its sha256 hashes in the lock."""
    packages: dict[str, set[str]] = {}
    name = None
    for line in open(path):
        if line and not line[0].isspace() and "==" in line:
            name = line.split("==")[0]
            packages[name] = set()
        for digest in re.findall(r"sha256:([0-9a-f]{64})", line):
            packages[name].add(digest)
    return packages


def wheel_size(name: str, hashes: set[str]) -> tuple[str, int]:
    request = urllib.request.Request(
        f"https://pypi.org/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    candidates = [f for f in files if f["hashes"].get("sha256") in hashes and f["filename"].endswith(".whl")]
    fitting = [
        f
        for f in candidates
        if any(tag in f["filename"] for tag in TAGS) and ("x86_64" in f["filename"] or "none-any" in f["filename"])
    ]
    best = min(fitting or candidates, key=lambda f: f["size"])
    return best["filename"], best["size"]


def main(path: str = "requirements/worker.lock") -> None:
    total = {"cuda": 0, "cpu (without torch, torchvision)": 0}
    for name, hashes in sorted(locked(path).items()):
        filename, size = wheel_size(name, hashes)
        total["cuda"] += size
        if name not in ("torch", "torchvision") and not CUDA_ONLY.match(name):
            total["cpu (without torch, torchvision)"] += size
        print(f"{size / 2**20:9.1f} MiB  {filename}")
    for variant, size in total.items():
        print(f"wheels, {variant}: {size / 2**30:.2f} GiB")


if __name__ == "__main__":
    main(*sys.argv[1:])
