"""MAE: a ViT encoder sees 25% of the patches, a light decoder reconstructs the masked ones (normalised pixels)."""

import torch
from torch import nn

from runner.clel.encoders.base import BuildContext, CRLOutput, SelfSupervisedMethod
from runner.clel.networks import Normalize
from runner.config.methods import MAESettings, decoder_heads


def sincos_position_embedding(width: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding, grid*grid x width (half the channels per axis)."""
    if width % 4:
        raise ValueError(f"widths must be multiples of 4 for the position embedding, got {width}")
    quarter = width // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for axis in (ys, xs):
        angles = axis.reshape(-1, 1).double() * omega
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1).float()


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """B x C x H x W -> B x (H/p * W/p) x (p * p * C), patches in row-major order."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def random_masking(batch: int, patches: int, keep: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample random subsets: (indices of the kept patches B x keep, boolean mask B x patches, True = masked)."""
    order = torch.rand(batch, patches, device=device).argsort(dim=1)
    kept = order[:, :keep]
    mask = torch.ones(batch, patches, dtype=torch.bool, device=device)
    mask.scatter_(1, kept, False)
    return kept, mask


def masked_patch_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE against per-patch normalised target pixels, averaged over the masked patches only."""
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = (prediction - target).pow(2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


class RunningStandardize(nn.Module):
    """Per-dimension standardisation, as BatchNorm without affine: a batch's own mean and variance in train mode,
    running statistics in eval mode; but the running statistics move only by `track`, with the images it is
    given (BatchNorm's rule, momentum 0.1), not with every batch the module standardises."""

    def __init__(self, width: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(width))
        self.register_buffer("running_var", torch.ones(width))

    @torch.no_grad()
    def track(self, features: torch.Tensor) -> None:
        """Move the statistics towards this batch's mean and (unbiased) variance."""
        features = features.float()
        self.running_mean.lerp_(features.mean(0), self.momentum)
        self.running_var.lerp_(features.var(0), self.momentum)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.training and len(features) > 1:
            mean, var = features.mean(0), features.var(0, unbiased=False)
        else:
            mean, var = self.running_mean, self.running_var
        return (features - mean) / (var + self.eps).sqrt()


def _transformer(width: int, depth: int, heads: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width), enable_nested_tensor=False)


class MAE(SelfSupervisedMethod):
    """Masked autoencoder on a ViT; latent = the normalised mean of the encoder's patch tokens (no masking),
    standardised per dimension first (latent_standardized): by the batch in training, and in evaluation by the
    running statistics of the un-augmented training images' mean tokens."""

    Settings = MAESettings

    def __init__(
        self,
        augment: nn.Module,
        image_size: int,
        patch_size: int,
        width: int,
        depth: int,
        heads: int,
        decoder_width: int,
        decoder_depth: int,
        mask_ratio: float,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        latent_standardized: bool = True,
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"patch_size = {patch_size} does not divide image_size = {image_size}")
        grid = image_size // patch_size
        self.patch_size, self.patches = patch_size, grid * grid
        self.keep = max(1, round(self.patches * (1 - mask_ratio)))
        self.latent_dim = width
        self.augment = augment
        self.normalize = Normalize(mean, std)
        self.patch_embed = nn.Conv2d(3, width, patch_size, stride=patch_size)
        self.register_buffer("position", sincos_position_embedding(width, grid))
        self.encoder = _transformer(width, depth, heads)
        self.latent_norm = RunningStandardize(width) if latent_standardized else None
        self.decoder_embed = nn.Linear(width, decoder_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_width))
        self.register_buffer("decoder_position", sincos_position_embedding(decoder_width, grid))
        self.decoder = _transformer(decoder_width, decoder_depth, decoder_heads(heads))
        self.head = nn.Linear(decoder_width, patch_size * patch_size * 3)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(width, -1))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embeddings plus positions, B x patches x width."""
        return self.patch_embed(self.normalize(x)).flatten(2).transpose(1, 2) + self.position

    @classmethod
    def build(cls, settings: MAESettings, context: BuildContext) -> "MAE":
        s = settings
        return cls(
            context.views(),
            context.image_size,
            s.patch_size,
            s.width,
            s.depth,
            s.heads,
            s.decoder_width,
            s.decoder_depth,
            s.mask_ratio,
            context.mean,
            context.std,
            s.latent_standardized,
        )

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the encoder's tokens over every patch (no masking)."""
        return self.encoder(self.tokens(x)).mean(dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The mean token, standardised per dimension unless latent_standardized is off (MAE has no projector)."""
        tokens = self.representation(x)
        return tokens if self.latent_norm is None else self.latent_norm(tokens)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted pixels of every patch B x patches x p*p*3, mask B x patches) for one random masking."""
        tokens = self.tokens(x)
        b, n, width = tokens.shape
        kept, mask = random_masking(b, n, self.keep, x.device)
        visible = torch.gather(tokens, 1, kept.unsqueeze(-1).expand(-1, -1, width))
        encoded = self.decoder_embed(self.encoder(visible))
        full = self.mask_token.expand(b, n, -1).clone()
        full = full.scatter(1, kept.unsqueeze(-1).expand(-1, -1, full.shape[-1]), encoded.to(full.dtype))
        return self.head(self.decoder(full + self.decoder_position)), mask

    def loss(self, x: torch.Tensor, generated_negatives: torch.Tensor | None = None) -> CRLOutput:
        view = self.augment(x)
        prediction, mask = self.reconstruct(view)
        loss = masked_patch_loss(prediction, patchify(view, self.patch_size), mask)
        if self.latent_norm is not None:  # the statistics of the images z is read from at evaluation
            with torch.no_grad():
                self.latent_norm.track(self.representation(x))
        return CRLOutput(loss, self.latent(view))
