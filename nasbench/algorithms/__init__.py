"""Supernet-training algorithms, one file per method, registered by ``type``."""
from .base import ChannelCounter, WidthAlgorithm, build_algorithm
from . import bcnet, autoslim, uniform  # noqa: F401  (registration)
from .bcnet import BCNet
from .autoslim import AutoSlim
from .uniform import UniformSinglePath

__all__ = ["ChannelCounter", "WidthAlgorithm", "build_algorithm", "BCNet", "AutoSlim", "UniformSinglePath"]
