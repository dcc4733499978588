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
    raise UserError(f"crl.method = {crl.method}: not implemented yet")


def method_optimizer_config(cfg: RunConfig):
    """The selected method's optimizer settings."""
    return getattr(cfg.crl, cfg.crl.method).optimizer
