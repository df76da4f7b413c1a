"""Search spaces: one file per space, registered in :data:`nasbench.registry.SPACES`."""
from .base import SearchSpace
from .width import WidthSpace
from . import bnas_v2  # noqa: F401  (registers "bnas_v2")
from . import bnnas_imagenet, channel_bench_macro, mobilenetv2_width, nas_bench_macro, nas_bench_201, nas_bench_mr, nats_sss  # noqa: F401
from . import bossnas_mbconv, bossnas_nats  # noqa: F401  (BossNAS block-wise spaces)
from .bnnas_imagenet import BNNASImageNetSpace
from .channel_bench_macro import ChannelBenchMacroSpace
from .nas_bench_macro import NASBenchMacroSpace


def build_space(cfg_space, num_classes=None):
    """Search space from a config section (``type``, ``variant``, ``bins``, ``min_bins``, ``kwargs``)."""
    from ..registry import SPACES
    kwargs = dict(cfg_space.get("kwargs") or {})
    if cfg_space.get("variant") is not None:
        kwargs.setdefault("variant", cfg_space["variant"])
    if num_classes is not None:
        kwargs.setdefault("num_classes", num_classes)
    return SPACES.build(cfg_space["type"], bins=cfg_space["bins"], min_bins=cfg_space["min_bins"], **kwargs)


__all__ = ["SearchSpace", "WidthSpace", "BNNASImageNetSpace", "ChannelBenchMacroSpace", "NASBenchMacroSpace", "build_space"]
