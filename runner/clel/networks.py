"""The EBM (pre-activation ResNet with spectral norm) and the encoder backbones."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


class Normalize(nn.Module):
    """Per-channel standardisation with fixed dataset statistics."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def mlp(widths: Sequence[int], act: type[nn.Module], bias: bool = True, batch_norm: bool = False) -> nn.Sequential:
    """Linear layers with an activation (and optional BatchNorm) between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        last = i == len(widths) - 2
        layers.append(nn.Linear(fan_in, fan_out, bias=bias and (last or not batch_norm)))
        if not last:
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(act())
    return nn.Sequential(*layers)


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


class PreActBlock(nn.Module):
    """Pre-activation residual block: act-conv-act-conv plus a (1x1 conv) shortcut."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.act = _leaky()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = (
            nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv2(self.act(self.conv1(self.act(x))))


class EnergyNet(nn.Module):
    """CLEL's EBM: backbone + head give f(x) in R^d_f, the bias-free projector gives u = g(f(x))."""

    def __init__(
        self,
        channels: Sequence[int],
        blocks_per_stage: int,
        feature_dim: int,
        head_width: int,
        projector_width: int,
        latent_dim: int,
        mean: Sequence[float],
        std: Sequence[float],
        use_spectral_norm: bool = True,
    ):
        super().__init__()
        stages: list[nn.Module] = [Normalize(mean, std), nn.Conv2d(3, channels[0], 3, padding=1)]
        in_channels = channels[0]
        for i, out_channels in enumerate(channels):
            if i > 0:
                stages.append(nn.AvgPool2d(2))
            for _ in range(blocks_per_stage):
                stages.append(PreActBlock(in_channels, out_channels))
                in_channels = out_channels
        stages += [_leaky(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.backbone = nn.Sequential(*stages)
        self.head = mlp([in_channels, head_width, feature_dim], _leaky)
        self.projector = mlp([feature_dim, projector_width, latent_dim], _leaky, bias=False)
        self._init_weights()
        if use_spectral_norm:
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    spectral_norm(module)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
            elif isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="linear")
            if isinstance(module, nn.Linear | nn.Conv2d) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): the vector whose squared norm is the marginal energy."""
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f(x), u(x) = g(f(x))), u unnormalised."""
        f = self.features(x)
        return f, self.projector(f)


@torch.no_grad()
def power_iterate(network: nn.Module, iterations: int) -> None:
    """Advance the power iteration of every spectral-normalised weight by `iterations` steps.

    The same update a forward pass in train mode makes once per pass (torch's spectral_norm keeps u and v
    as buffers), here `iterations` times on weights that do not change in between.
    """
    if iterations < 1:
        return
    for module in network.modules():
        if not parametrize.is_parametrized(module, "weight"):
            continue
        weights = module.parametrizations.weight
        for normalizer in weights:
            if hasattr(normalizer, "n_power_iterations"):
                usual = normalizer.n_power_iterations
                normalizer.n_power_iterations = iterations
                try:
                    normalizer.train()(weights.original)
                finally:
                    normalizer.n_power_iterations = usual


def spectral_norm_estimates(network: nn.Module) -> dict[str, tuple[float, float]]:
    """For every spectral-normalised weight: (sigma estimated from u and v, the true largest singular value)."""
    found = {}
    for name, module in network.named_modules():
        if not parametrize.is_parametrized(module, "weight"):
            continue
        original = module.parametrizations.weight.original.detach()
        matrix = original.reshape(original.shape[0], -1)
        for normalizer in module.parametrizations.weight:
            if hasattr(normalizer, "_u"):
                estimate = torch.dot(normalizer._u, matrix @ normalizer._v).item()
                found[name] = (estimate, torch.linalg.matrix_norm(matrix, ord=2).item())
    return found


class StridedPointwiseConv(nn.Conv2d):
    """ResNet's 1x1 strided shortcut convolution (no bias, no padding).

    PyTorch 2.14.1's CPU backward of a 1x1 stride-2 convolution on channels-last input with 2 to 6 input channels
    corrupts the heap at one thread (an abort or a segfault; tests/integration/test_networks_workaround.py shows
    it). There, and only there, the same product is computed as the stride-1 convolution of the subsampled input,
    which is the same function; every other case, the widths of the shipped profiles included, runs torch's own
    kernel.
    """

    SMALL_CHANNELS = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        affected = x.device.type == "cpu" and self.in_channels < self.SMALL_CHANNELS
        if affected and x.is_contiguous(memory_format=torch.channels_last):
            step_h, step_w = self.stride
            return F.conv2d(x[:, :, ::step_h, ::step_w], self.weight, self.bias)
        return super().forward(x)


class BasicBlock(nn.Module):
    """ResNet's basic block: conv-BN-ReLU-conv-BN plus the (projected) input, then ReLU (as torchvision's)."""

    def __init__(self, in_planes: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18Backbone(nn.Module):
    """ResNet-18 (basic blocks, 2-2-2-2) with a 3x3 stride-1 stem, no max-pool, and a given width.

    Written out rather than taken from torchvision: importing torchvision.models costs ~160 MB of RSS
    (its CUDA extension) in every training process, and its ResNet class has fixed widths.
    """

    def __init__(self, width: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        layers: list[nn.Module] = [
            Normalize(mean, std),
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        in_planes = width
        for stage, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
            for block in range(2):
                stride = 2 if stage > 0 and block == 0 else 1
                downsample = None
                if stride != 1 or in_planes != planes:
                    downsample = nn.Sequential(
                        StridedPointwiseConv(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                    )
                layers.append(BasicBlock(in_planes, planes, stride, downsample))
                in_planes = planes
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.out_dim = in_planes
        stem = layers[1]  # the reference replaces the stem after torchvision's init: it keeps torch's default init
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module is not stem:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)  # zero-init residual, as torchvision's zero_init_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
