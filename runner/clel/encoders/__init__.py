"""The self-supervised methods the encoder can be trained with: one file each, registered here by name.

Adding a method: its settings in runner/config/methods.py (one class and a line in METHOD_SETTINGS), a file here
with a SelfSupervisedMethod subclass (Settings, build, embed, loss) and one line in METHODS.
"""

from runner.clel.encoders.base import BuildContext, CRLOutput, SelfSupervisedMethod
from runner.clel.encoders.byol import BYOL
from runner.clel.encoders.mae import MAE
from runner.clel.encoders.moco import MoCo
from runner.clel.encoders.simclr import SimCLR
from runner.config.methods import METHOD_SETTINGS, NO_ENCODER

METHODS: dict[str, type[SelfSupervisedMethod]] = {
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "mae": MAE,
}
if any(METHODS[name].Settings is not settings for name, settings in METHOD_SETTINGS.items()):
    raise RuntimeError("runner.config.methods.METHOD_SETTINGS and METHODS must name the same methods")

__all__ = ["METHODS", "NO_ENCODER", "BuildContext", "CRLOutput", "SelfSupervisedMethod"]
