"""Self-supervised methods behind one interface, selected by the config's crl.method."""

from runner.clel.augment import StrongAugmentation
from runner.clel.crl.base import CRLOutput, SelfSupervisedMethod
from runner.clel.networks import ResNet18Backbone
from runner.config import RunConfig
from runner.errors import UserError

__all__ = ["CRLOutput", "SelfSupervisedMethod", "build_method"]


def build_method(cfg: RunConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> SelfSupervisedMethod | None:
    """The configured method on CPU (None for 'none': no encoder, the plain EBM)."""
    crl = cfg.crl
    if crl.method == "none":
        return None
    augment = StrongAugmentation(cfg.data.image_size)
    if crl.method == "simclr":
        from runner.clel.crl.simclr import SimCLR

        s = crl.simclr
        backbone = ResNet18Backbone(crl.backbone_width, mean, std)
        return SimCLR(backbone, augment, s.projector_hidden, s.latent_dim, s.temperature)
    if crl.method == "moco":
        from runner.clel.crl.moco import MoCo

        m = crl.moco
        backbone = ResNet18Backbone(crl.backbone_width, mean, std)
        return MoCo(
            backbone,
            augment,
            m.projector_hidden,
            m.latent_dim,
            m.temperature,
            m.queue_size,
            m.momentum_start,
            m.momentum_end,
        )
    if crl.method == "byol":
        from runner.clel.crl.byol import BYOL

        b = crl.byol
        backbone = ResNet18Backbone(crl.backbone_width, mean, std)
        return BYOL(
            backbone, augment, b.projector_hidden, b.predictor_hidden, b.latent_dim, b.momentum_start, b.momentum_end
        )
    if crl.method == "mae":
        from runner.clel.crl.mae import MAE

        a = crl.mae
        size = cfg.data.image_size
        return MAE(
            augment,
            size,
            a.patch_size,
            a.width,
            a.depth,
            a.heads,
            a.decoder_width,
            a.decoder_depth,
            a.mask_ratio,
            mean,
            std,
        )
    raise UserError(f"crl.method = {crl.method}: not implemented")


def method_optimizer_config(cfg: RunConfig):
    """The selected method's optimizer settings."""
    return getattr(cfg.crl, cfg.crl.method).optimizer
