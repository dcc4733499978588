"""The self-supervised methods the encoder can be trained with: one file each, registered here by name.

Adding a method: a file with a SelfSupervisedMethod subclass (its Settings, has_negatives, build, embed,
loss) and one line in METHODS.
"""

from runner.clel.crl.base import BuildContext, CRLOutput, MethodSettings, SelfSupervisedMethod
from runner.clel.crl.byol import BYOL
from runner.clel.crl.mae import MAE
from runner.clel.crl.moco import MoCo
from runner.clel.crl.simclr import SimCLR

METHODS: dict[str, type[SelfSupervisedMethod]] = {
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "mae": MAE,
}
NO_ENCODER = "none"  # crl.method of the plain EBM: no encoder, no latent

__all__ = ["METHODS", "NO_ENCODER", "BuildContext", "CRLOutput", "MethodSettings", "SelfSupervisedMethod"]
