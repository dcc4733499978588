"""Choosing the torch device of a run, and naming it in result files."""

import torch

from runner.errors import UserError


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("runtime.device = cuda, but torch sees no CUDA device (use --device cpu)")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    """'cpu (N threads)' or 'cuda (<GPU name>)' for result files."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
