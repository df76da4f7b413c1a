"""Supernet-training algorithms, one file per method, registered by ``type``."""
from .base import Algorithm, ChannelCounter, SupernetAlgorithm, SupervisedMixin, build_algorithm
from . import bcnet, autoslim, uniform, spos, bnnas, darts, bossnas  # noqa: F401  (registration)
from .bcnet import BCNet
from .autoslim import AutoSlim
from .uniform import UniformSinglePath
from .spos import SPOS
from .bnnas import BNNAS
from .darts import BNASv2
from .supervised import StandardAlgorithm, evaluate_accuracy
from .bossnas_ratings import BossRatingEvaluator
from .bossnas import BossNAS, BossGreedyEvaluator

__all__ = ["Algorithm", "ChannelCounter", "SupernetAlgorithm", "SupervisedMixin", "build_algorithm", "BCNet",
           "AutoSlim", "UniformSinglePath", "SPOS", "BNNAS", "BNASv2", "StandardAlgorithm", "evaluate_accuracy",
           "BossRatingEvaluator", "BossNAS", "BossGreedyEvaluator"]
