"""The self-supervised methods the encoder can be trained with, one file each: SimCLR, MoCo v2, BYOL, MAE.

The registry is runner.config.methods.METHODS (crl.method -> its settings and its class here, by name); adding a
method is its settings class and registry line there and a SelfSupervisedMethod subclass (Settings, build, embed,
loss) in a file here.
"""

from importlib import import_module

from runner.clel.encoders.base import BuildContext, CRLOutput, SelfSupervisedMethod
from runner.config.methods import METHODS, NO_ENCODER


def method_class(name: str) -> type[SelfSupervisedMethod]:
    """The class of crl.method `name`, imported from where the registry names it."""
    module, _, cls = METHODS[name].implementation.partition(":")
    return getattr(import_module(module), cls)


__all__ = ["NO_ENCODER", "BuildContext", "CRLOutput", "SelfSupervisedMethod", "method_class"]
