"""Choosing the torch device of a run, and naming it in result files (which machine made a number)."""

import platform
from pathlib import Path

import torch

from runner.errors import UserError

# The vector extensions that change floating-point results on a CPU (oneDNN and ATen pick kernels by them).
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "asimd", "sve")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("runtime.device = cuda, but torch sees no CUDA device (use --device cpu)")
    return torch.device(name)


def cpu_description(cpuinfo: str | None = None) -> str:
    """'<CPU model>, <torch's kernel level> (<vector extensions>)', e.g. 'Intel(R) Xeon(R) Processor, AVX512
    (avx2 avx512f amx_bf16)'; cpuinfo is /proc/cpuinfo's text (read here when None; absent off Linux)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    model = fields.get("model name") or fields.get("hardware") or platform.processor() or platform.machine()
    if fields.get("cpu family") and fields.get("model"):  # a generic name under a hypervisor; these tell apart
        model = f"{model} (family {fields['cpu family']}, model {fields['model']})"
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    extensions = " ".join(flag for flag in VECTOR_FLAGS if flag in flags) or "none listed"
    return f"{model or 'unknown CPU'}, {torch.backends.cpu.get_cpu_capability()} ({extensions})"


def device_label(device: torch.device) -> str:
    """'cpu (N threads; <cpu_description>)' or 'cuda (<GPU name>)' for result files."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads; {cpu_description()})"
