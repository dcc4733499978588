"""Split requirements/worker.lock for the CPU image: torch and torchvision pins (for PyTorch's CPU index) and the
rest of the lock without torch's CUDA packages.

    python requirements/cpu_lock.py worker.lock rest.lock torch.txt
"""

import re
import sys

TORCH = ("torch", "torchvision")
CUDA_ONLY = re.compile(r"^(triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)$")


def split(lock: str) -> tuple[str, str]:
    """(the lock without torch, torchvision and the CUDA-only packages, 'torch==X\\ntorchvision==Y\\n')."""
    kept, pins, keep = [], [], True
    for line in lock.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name, _, version = line.split(" ")[0].partition("==")
            keep = name not in TORCH and not CUDA_ONLY.match(name)
            if name in TORCH:
                pins.append(f"{name}=={version}")
        if keep:
            kept.append(line)
    if sorted(p.split("==")[0] for p in pins) != sorted(TORCH):
        raise SystemExit(f"the lock must pin {' and '.join(TORCH)}")
    return "\n".join(kept) + "\n", "\n".join(pins) + "\n"


if __name__ == "__main__":
    source, rest_path, torch_path = sys.argv[1:4]
    rest, torch_pins = split(open(source).read())
    open(rest_path, "w").write(rest)
    open(torch_path, "w").write(torch_pins)
