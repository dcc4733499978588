"""CLEL's strong augmentation, drawn per sample (kornia), for encoder views and replay-buffer samples."""

import kornia.augmentation as K
import torch
from kornia.augmentation.random_generator import ResizedCropGenerator
from torch import nn

CROP_TRIALS = 10  # candidate (area, aspect) draws per sample before the fallback crop


class ReferenceCropSizes(ResizedCropGenerator):
    """Resized-crop parameters drawn by kornia 0.6.3's rule, the one the reference implementation ran with.

    Per sample, CROP_TRIALS candidates: area ~ U(scale) x H x W, log aspect ~ U(log ratio), w = round(sqrt(area x
    aspect)), h = round(sqrt(area / aspect)). The first candidate with 0 < w < W and 0 < h < H is kept (strictly
    smaller: kornia >= 0.7 also accepts a crop as wide or as tall as the image), and its w becomes the crop's height
    and its h the width, as 0.6.3 returns them. Without one: 0.6.3's fallback, H x round(W x min(ratio)) for an
    image narrower than min(ratio), else round(W x min(ratio)) x W (a square image gets 12 x 16 at 16 x 16).
    The random draws are kornia's own, in its order (areas, aspects, then x and y starts): with the same
    generator state this gives the sizes 0.6.3 gives, and the crop positions kornia draws for them.
    """

    def forward(self, batch_shape: tuple[int, ...], same_on_batch: bool = False) -> dict[str, torch.Tensor]:
        if same_on_batch:
            raise ValueError("ReferenceCropSizes draws per sample (same_on_batch=False)")
        batch_size, height, width = batch_shape[0], batch_shape[-2], batch_shape[-1]
        scale = torch.as_tensor(self.scale, dtype=torch.float32)
        ratio = torch.as_tensor(self.ratio, dtype=torch.float32)
        unit = self.rand_sampler.rsample((batch_size, CROP_TRIALS)).float()
        area = (unit * (scale[1] - scale[0]) + scale[0]) * height * width
        aspect = torch.exp(self.log_ratio_sampler.rsample((batch_size, CROP_TRIALS)).float())
        w = torch.sqrt(area * aspect).round()
        h = torch.sqrt(area / aspect).round()
        fits = (w > 0) & (w < height) & (h > 0) & (h < width)  # 0.6.3 compares w with H and h with W
        first = fits.int().argmax(dim=1)  # the first fitting candidate (0 when none fits: replaced below)
        rows = torch.arange(batch_size)
        crop_h, crop_w = w[rows, first], h[rows, first]
        fallback_h, fallback_w = self._fallback(height, width, float(ratio.min()))
        found = fits.any(dim=1)
        crop_h = torch.where(found, crop_h, torch.tensor(fallback_h, dtype=crop_h.dtype))
        crop_w = torch.where(found, crop_w, torch.tensor(fallback_w, dtype=crop_w.dtype))
        return self._crop_parameters(batch_shape, same_on_batch, torch.stack([crop_h, crop_w], dim=1))

    @staticmethod
    def _fallback(height: int, width: int, min_ratio: float) -> tuple[float, float]:
        """0.6.3's crop when no candidate fits (it compares H / W with min(ratio) on both branches)."""
        in_ratio = height / width
        if in_ratio < min_ratio:
            return float(height), float(torch.tensor(height / min_ratio).round())
        if in_ratio > min_ratio:
            return float(torch.tensor(width * min_ratio).round()), float(width)
        return float(height), float(width)


class StrongAugmentation(nn.Module):
    """RandomResizedCrop(crop_min_scale-1, bicubic), colour jiggle (0.4, 0.4, 0.4, 0.1, p=0.8), grayscale p=0.2,
    horizontal flip (unless flip = False). CLEL's: crop_min_scale 0.08, flip on.

    As the reference implementation: crop sizes by kornia 0.6.3's rule (ReferenceCropSizes), kornia 0.6.3's
    ColorJitter (which kornia >= 0.7 calls ColorJiggle: additive brightness, contrast scaling the raw values,
    saturation and hue in HSV), and no final clamp: values the bicubic crop pushes outside [0, 1] stay there
    unless the colour step runs (docs/FIDELITY.md).
    """

    def __init__(self, image_size: int, crop_min_scale: float = 0.08, flip: bool = True):
        super().__init__()
        scale = (crop_min_scale, 1.0)
        crop = K.RandomResizedCrop((image_size, image_size), scale=scale, resample="BICUBIC")
        crop._param_generator = ReferenceCropSizes(crop._param_generator.output_size, scale, (3 / 4, 4 / 3))
        steps = [crop, K.ColorJiggle(0.4, 0.4, 0.4, 0.1, p=0.8), K.RandomGrayscale(p=0.2)]
        if flip:
            steps.append(K.RandomHorizontalFlip())
        self.pipeline = K.AugmentationSequential(*steps, same_on_batch=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pipeline(x)
