"""Measured fp32 precision of the optimized and the plain training path, each against the project's own fp64.

The oracle is the project in float64 (issue #20: it equals the reference implementation in float64 to 1e-7), on
the same weights and inputs: one batch x, samples x~ from the replay buffer, the SimCLR views and the view z is
taken from drawn once. Every quantity of one training step is computed three times: the optimized path (the
model with runtime.optimized = true: modules and inputs in channels-last, SGLD on cached frozen weights), the
plain path (fp32, contiguous) and the plain path in float64. The plain path's error is the fp32 floor.

Each number is max |a - oracle| / max |oracle| over the tensor (gradients: per tensor, then the largest over
tensors and which tensor; "global" is ||a - oracle|| / ||oracle|| over all the network's gradients together).
Tensors whose oracle gradient is exactly zero (the zero-initialised residual branches at init) are left out of
the maximum; they are zero in every path.

A second table says where the optimized path's encoder-gradient gap comes from: the same computation with the
encoder's BatchNorm2d layers run on contiguous copies of their inputs (everything else channels-last), and with
every ReLU's mask taken from the float64 run ("pinned"), with the number of ReLU activations whose sign differs
from the float64 run. Last: f(x) on data with the spectral-norm estimate after P - 1 instead of P power
iterations (issue #20, point 3; P = ebm.power_iterations).

    python scripts/measure_precision.py                      # ref32 at batch 8 and tiny, at init
    python scripts/measure_precision.py --configs tiny --train-steps 50
    python scripts/measure_precision.py --configs ref32 --seeds 1,2,3,4,5,6   # plus a summary over input seeds

One torch thread by default (--threads: the summation order of the channels-last kernels depends on the count).
"""

import argparse
import copy
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from runner.clel.encoders.simclr import nt_xent
from runner.clel.energy import ebm_loss
from runner.clel.engine import Engine
from runner.clel.model import CLEL, training_engine
from runner.clel.networks import power_iterate
from runner.clel.sampler import sgld
from runner.config import ExperimentsFile, RunConfig
from runner.data import ImageData, load_digits
from runner.run.bench import bench_config, synthetic_data

CONFIG_NAMES = ("ref32", "tiny")
# issue #20: the reviewer's numbers (ours, optimized, against hankook/CLEL in fp32; the reference's fp32 against
# its fp64), ref32 at batch 8 on an Intel Xeon with AVX-512. Quoted, not measured here.
REVIEWER = {
    "f(x)": ("3.3e-7", "3.7e-7"),
    "u(x)": ("5.1e-7", "5.9e-7"),
    "z": ("1.3e-6", "5.9e-7"),
    "E(x, z)": ("1.4e-6", "6.4e-7"),
    "L_ebm": ("<= 1e-7", ""),
    "SimCLR loss": ("<= 1e-7", ""),
    "one SGLD step": ("<= 1e-7", ""),
    "EBM gradients, max over tensors": ("1.4e-5", "4.0e-6"),
    "encoder gradients, max over tensors": ("3.0e-3 (first projector layer)", "4.1e-6"),
    "encoder gradients, global norm": ("1.5e-4", ""),
}
FIRST_PROJECTOR_LAYER = "projector.0.weight"


def run_config(name: str, optimized: bool) -> tuple[RunConfig, ImageData]:
    """ref32 at batch 8 (issue #20) on synthetic images, or the tiny profile on the digits."""
    if name == "ref32":
        overrides = {"train.batch_size": 8, "sgld.buffer_size": 100}
        return bench_config("ref32", not optimized, "cpu", False, overrides), synthetic_data(32)
    values = {"runtime.optimized": optimized, "runtime.device": "cpu"}
    return ExperimentsFile().resolve("baseline", "tiny", 0, values), load_digits(16)


def engines(name: str, train_steps: int) -> tuple[Engine, Engine]:
    """(optimized, plain) engines in the same state: init, or after `train_steps` optimized training steps."""
    cfg, data = run_config(name, True)
    fast = training_engine(cfg, data, torch.device("cpu"))
    for _ in range(train_steps):
        fast.train_step()
    cfg, data = run_config(name, False)
    plain = training_engine(cfg, data, torch.device("cpu"))
    plain.load_state_dict(fast.state_dict())
    if not plain.model.energy.norm_direction_split:
        raise SystemExit("the float64 energies below are the separated energy (the baseline's)")
    return fast, plain


def fixed_inputs(plain: Engine, seed: int) -> dict[str, torch.Tensor]:
    """One data batch, samples from the buffer, the SimCLR views of the batch and the view z is taken from."""
    torch.manual_seed(seed)
    batch, model = plain.batch_size, plain.model
    x = plain.batches(plain.step).contiguous()
    samples = model.buffer[:batch].contiguous().clone()
    views = model.crl.augment(torch.cat([x, x])).contiguous()
    view_z = model.crl.augment(x).contiguous()
    return {"x": x, "samples": samples, "views": views, "view_z": view_z}


class Contiguous(nn.Module):
    """Runs a module on a contiguous copy of its input and returns channels-last (a diagnostic)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.contiguous()).contiguous(memory_format=torch.channels_last)


class ReLUMasks:
    """Every ReLU call's sign mask: recorded in one run, then counted against or imposed on another."""

    def __init__(self):
        self.mode = "off"
        self.masks: dict[tuple[str, int], torch.Tensor] = {}
        self.flips: dict[tuple[str, int], int] = {}
        self.calls: dict[str, int] = {}

    def __deepcopy__(self, memo: dict) -> "ReLUMasks":
        return self  # one record shared by every copy of the network

    def start(self, mode: str) -> None:
        self.mode, self.calls = mode, {}
        if mode == "count":
            self.flips = {}


class PinnedReLU(nn.Module):
    """A ReLU that records, counts or imposes its sign mask (ReLUMasks)."""

    def __init__(self, key: str, masks: ReLUMasks):
        super().__init__()
        self.key = key
        self.masks = masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        masks = self.masks
        call = masks.calls.get(self.key, 0)
        masks.calls[self.key] = call + 1
        key = (self.key, call)
        if masks.mode == "record":
            masks.masks[key] = (x > 0).contiguous()
        elif masks.mode == "count":
            masks.flips[key] = int(((x > 0).contiguous() != masks.masks[key]).sum())
        elif masks.mode == "impose":
            return x * masks.masks[key].to(x.dtype)
        return torch.relu(x)


def replace_modules(module: nn.Module, match: Callable[[nn.Module], bool], make: Callable[[str, nn.Module], nn.Module]):
    """Replace every submodule that matches by make(its dotted name, it), in place."""
    for name, child in list(module.named_modules()):
        for child_name, grandchild in list(child.named_children()):
            if match(grandchild):
                setattr(child, child_name, make(f"{name}.{child_name}".lstrip("."), grandchild))
    return module


def cpu_float64_copy(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).double()


def evaluate(
    model: CLEL, ebm: nn.Module, crl: nn.Module, inputs: dict[str, torch.Tensor], dtype: torch.dtype
) -> dict[str, Any]:
    """One training step's quantities on fixed inputs: energies, losses, one SGLD step, all gradients.

    fp32: the model's own energies, latent, sampling context and energy function (its path: optimized or
    plain). float64: the same formulas written out (the project's energies cast to float32).
    """
    ebm, crl = copy.deepcopy(ebm).to(dtype), copy.deepcopy(crl).to(dtype)
    layout = torch.channels_last if model.optimized else torch.contiguous_format
    data = {k: v.to(dtype).contiguous(memory_format=layout) for k, v in inputs.items()}
    cfg, batch = model.cfg, len(inputs["x"])
    exact = dtype == torch.float64

    sampler_ebm = copy.deepcopy(ebm)  # SGLD runs before the training forward, on the same weights
    torch.manual_seed(12345)
    if exact:
        sampler_ebm.eval()

        def energy_fn(x: torch.Tensor) -> torch.Tensor:
            return 0.5 * sampler_ebm.features(x).pow(2).sum(dim=1)

        step = sgld(data["samples"], energy_fn, 1, cfg.sgld.step_size, cfg.sgld.noise, cfg.sgld.grad_clip)
    else:
        with model.sampling(sampler_ebm):
            fn = model.marginal_energy_fn(sampler_ebm)
            step = sgld(data["samples"], fn, 1, cfg.sgld.step_size, cfg.sgld.noise, cfg.sgld.grad_clip)

    ebm.train()
    crl.train()
    f, u = ebm(torch.cat([data["x"], data["samples"]]))
    f_data, f_samples, u_data, u_samples = f[:batch], f[batch:], u[:batch], u[batch:]
    if exact:
        with torch.no_grad():
            z = F.normalize(crl.embed(data["view_z"]), dim=1)
        beta = model.energy.beta
        joint = 0.5 * f_data.pow(2).sum(1) - beta * (F.normalize(u_data, dim=1) * z).sum(1)
        marginal_data, marginal_samples = 0.5 * f_data.pow(2).sum(1), 0.5 * f_samples.pow(2).sum(1)
    else:
        z = crl.latent(data["view_z"])
        joint = model.energy.joint(f_data, u_data, z)
        marginal_data = model.energy.marginal(f_data, u_data)
        marginal_samples = model.energy.marginal(f_samples, u_samples)
    loss_ebm = ebm_loss(joint, marginal_data, marginal_samples, cfg.energy.alpha)
    features = crl.backbone(data["views"])
    loss_crl = nt_xent(crl.projector(features), crl.temperature, F.normalize(u_samples.detach(), dim=1))
    (loss_ebm + loss_crl).backward()

    def grads(module: nn.Module) -> dict[str, torch.Tensor]:
        found = {}
        for name, p in module.named_parameters():
            if p.grad is not None:
                found[name.replace(".inner.", ".")] = p.grad.detach().double()
        return found

    values = {
        "f(x)": f_data,
        "u(x)": u_data,
        "z": z,
        "E(x, z)": joint,
        "L_ebm": loss_ebm,
        "SimCLR loss": loss_crl,
        "one SGLD step": step,
        "encoder features h": features,
    }
    out: dict[str, Any] = {k: v.detach().double().contiguous() for k, v in values.items()}
    out["ebm"], out["crl"] = grads(ebm), grads(crl)
    return out


def relative(a: torch.Tensor, oracle: torch.Tensor) -> float:
    return float((a - oracle).abs().max() / oracle.abs().max())


def worst_tensor(grads: dict[str, torch.Tensor], oracle: dict[str, torch.Tensor]) -> tuple[float, str]:
    """The largest per-tensor relative difference and its tensor (tensors zero in the oracle must be zero)."""
    found = (0.0, "")
    for name, g in oracle.items():
        if g.abs().max() == 0:
            if grads[name].abs().max() != 0:
                return math.inf, name
            continue
        found = max(found, (relative(grads[name], g), name))
    return found


def global_relative(grads: dict[str, torch.Tensor], oracle: dict[str, torch.Tensor]) -> float:
    diff = sum(float((grads[k] - g).pow(2).sum()) for k, g in oracle.items())
    return math.sqrt(diff / sum(float(g.pow(2).sum()) for g in oracle.values()))


def rows(result: dict[str, Any], oracle: dict[str, Any]) -> dict[str, str]:
    """The table's cells for one path against the oracle."""
    cells = {}
    for key in ("f(x)", "u(x)", "z", "E(x, z)", "L_ebm", "SimCLR loss", "one SGLD step"):
        cells[key] = f"{relative(result[key], oracle[key]):.1e}"
    for group, label in (("ebm", "EBM"), ("crl", "encoder")):
        value, name = worst_tensor(result[group], oracle[group])
        cells[f"{label} gradients, max over tensors"] = f"{value:.1e} (`{name}`)"
        cells[f"{label} gradients, global norm"] = f"{global_relative(result[group], oracle[group]):.1e}"
    first = FIRST_PROJECTOR_LAYER
    cells["encoder gradient, first projector layer"] = f"{relative(result['crl'][first], oracle['crl'][first]):.1e}"
    return cells


def measure(name: str, pair: tuple[Engine, Engine], train_steps: int, seed: int) -> tuple[str, str]:
    """The Markdown tables of one configuration in one state (the (optimized, plain) engines are left as they
    are), and its one-line summary (a row of the table over seeds)."""
    started = time.perf_counter()
    inputs = fixed_inputs(pair[1], seed)
    fast, plain = pair[0].model, pair[1].model
    masks = ReLUMasks()
    pinned = replace_modules(
        copy.deepcopy(plain.crl), lambda m: isinstance(m, nn.ReLU), lambda key, _: PinnedReLU(key, masks)
    )
    masks.start("record")
    oracle = evaluate(plain, cpu_float64_copy(plain.ebm), cpu_float64_copy(pinned), inputs, torch.float64)
    masks.start("off")
    optimized = evaluate(fast, fast.ebm, fast.crl, inputs, torch.float32)
    floor = evaluate(plain, plain.ebm, plain.crl, inputs, torch.float32)
    both = evaluate(fast, fast.ebm, fast.crl, inputs, torch.float64)
    cfg = plain.cfg
    lines = [
        f"### `{name}`: batch {cfg.train.batch_size}, {cfg.data.image_size}x{cfg.data.image_size}, "
        f"{'at init' if not train_steps else f'after {train_steps} optimized training steps'}",
        "",
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} thread; max |a - fp64| / max |fp64| per tensor",
        "",
    ]
    quoted = name == "ref32" and not train_steps
    header = "| quantity | optimized vs fp64 | plain vs fp64 (fp32 floor) | optimized vs plain |"
    rule = "|---|---|---|---|"
    if quoted:
        header += " reviewer: ours vs ref | reviewer: fp32 floor |"
        rule += "---|---|"
    lines += [header, rule]
    cells_fast, cells_floor = rows(optimized, oracle), rows(floor, oracle)
    cells_between = rows(optimized, floor)
    for key, fast_cell in cells_fast.items():
        line = f"| {key} | {fast_cell} | {cells_floor[key]} | {cells_between[key]} |"
        if quoted:
            ours, ref_floor = REVIEWER.get(key, ("", ""))
            line += f" {ours} | {ref_floor} |"
        lines.append(line)
    layouts = worst_tensor(both["crl"], oracle["crl"])[0], worst_tensor(both["ebm"], oracle["ebm"])[0]
    lines += [
        "",
        f"The optimized path in float64 against the plain path in float64 (the same math in both layouts): "
        f"encoder gradients {layouts[0]:.1e}, EBM gradients {layouts[1]:.1e} (max over tensors).",
        "",
    ]
    cause, flips = cause_table(fast, plain, pinned, masks, inputs, oracle, optimized, floor)
    lines += cause
    lines += ["", power_iteration_line(plain, inputs), "", f"({time.perf_counter() - started:.0f} s)", ""]
    summary = [str(seed)]
    for result, flip in ((optimized, flips["optimized"]), (floor, flips["plain (fp32 floor)"])):
        value, tensor = worst_tensor(result["crl"], oracle["crl"])
        first = relative(result["crl"][FIRST_PROJECTOR_LAYER], oracle["crl"][FIRST_PROJECTOR_LAYER])
        summary += [f"{value:.1e} (`{tensor}`)", f"{first:.1e}", f"{global_relative(result['crl'], oracle['crl']):.1e}"]
        summary.append(str(flip))
    return "\n".join(lines), "| " + " | ".join(summary) + " |"


def cause_table(
    fast: CLEL,
    plain: CLEL,
    pinned: nn.Module,
    masks: ReLUMasks,
    inputs: dict[str, torch.Tensor],
    oracle: dict[str, Any],
    optimized: dict[str, Any],
    floor: dict[str, Any],
) -> tuple[list[str], dict[str, int]]:
    """Encoder gradients of the optimized path with BatchNorm2d contiguous, and with the fp64 ReLU masks; the
    table's lines and the number of flipped ReLU activations per path."""
    contiguous_bn = replace_modules(
        copy.deepcopy(fast.crl), lambda m: isinstance(m, nn.BatchNorm2d), lambda _, m: Contiguous(m)
    )
    variants = {"optimized": optimized, "plain (fp32 floor)": floor}
    flips = {}
    for label, model in (("optimized", fast), ("plain (fp32 floor)", plain)):
        placed = copy.deepcopy(pinned)
        if model.optimized:
            placed = placed.to(memory_format=torch.channels_last)
        masks.start("count")
        evaluate(model, model.ebm, placed, inputs, torch.float32)
        flips[label] = sum(masks.flips.values())
        masks.start("impose")
        variants[f"{label}, ReLU masks pinned to fp64"] = evaluate(model, model.ebm, placed, inputs, torch.float32)
        masks.start("off")
    variants["optimized, BatchNorm2d on contiguous tensors"] = evaluate(
        fast, fast.ebm, contiguous_bn, inputs, torch.float32
    )
    lines = [
        "Where the encoder-gradient gap comes from (against fp64; flips: ReLU activations, over the z view's and "
        "the SimCLR views' forward, whose sign differs from the fp64 run):",
        "",
        "| encoder, fp32 | backbone features h | max over tensors | global norm | first projector layer | ReLU flips |",
        "|---|---|---|---|---|---|",
    ]
    for label, result in variants.items():
        value, name = worst_tensor(result["crl"], oracle["crl"])
        first = relative(result["crl"][FIRST_PROJECTOR_LAYER], oracle["crl"][FIRST_PROJECTOR_LAYER])
        features = relative(result["encoder features h"], oracle["encoder features h"])
        flip = str(flips[label]) if label in flips else ("0 (imposed)" if "pinned" in label else "")
        lines.append(
            f"| {label} | {features:.1e} | {value:.1e} (`{name}`) | "
            f"{global_relative(result['crl'], oracle['crl']):.1e} | {first:.1e} | {flip} |"
        )
    return lines, flips


def power_iteration_line(plain: CLEL, inputs: dict[str, torch.Tensor]) -> str:
    """f(x) on data with the spectral-norm estimate after P - 1 against after P power iterations."""
    total = plain.cfg.ebm.power_iterations
    found = []
    for dtype in (torch.float32, torch.float64):
        features = []
        for before in (total - 2, total - 1):  # the training forward runs one more
            ebm = copy.deepcopy(plain.ebm).to(dtype).train()
            power_iterate(ebm, before)
            with torch.no_grad():
                features.append(ebm.features(inputs["x"].to(dtype)).double())
        found.append(relative(features[0], features[1]))
    return (
        f"f(x) on data, spectral-norm estimate after {total - 1} vs {total} power iterations: "
        f"{found[0]:.1e} (fp32), {found[1]:.1e} (fp64) relative max."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIG_NAMES), help="comma-separated: ref32, tiny")
    parser.add_argument("--train-steps", type=int, default=0, help="optimized training steps before measuring")
    parser.add_argument(
        "--seeds",
        default="1",
        help="comma-separated seeds of the fixed inputs (views, data noise); tables for the "
        "first, a summary of the encoder gradients over all",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the channels-last sums depend on it)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    names = [n for n in args.configs.split(",") if n]
    unknown = sorted(set(names) - set(CONFIG_NAMES))
    if unknown:
        parser.error(f"unknown config {', '.join(unknown)} (known: {', '.join(CONFIG_NAMES)})")
    torch.set_num_threads(args.threads)
    for name in names:
        summaries = []
        pair = engines(name, args.train_steps)
        for i, seed in enumerate(seeds):
            text, summary = measure(name, pair, args.train_steps, seed)
            summaries.append(summary)
            if i == 0:
                print(text, flush=True)
        if len(seeds) > 1:
            print(
                f"Encoder gradients of `{name}` against fp64 over input seeds (max over tensors, first projector "
                "layer, global norm, flipped ReLU activations):\n"
            )
            print(
                "| seed | optimized: max | first proj. | global | flips | plain: max | first proj. | global | flips |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            print("\n".join(summaries) + "\n", flush=True)


if __name__ == "__main__":
    main()
