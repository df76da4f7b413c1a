"""Search spaces: one file per space, registered in :data:`nasbench.registry.SPACES`."""
from .base import SearchSpace
from .width import WidthSpace
from . import bnas_v2  # noqa: F401  (registers "bnas_v2")
from . import bnnas_imagenet, channel_bench_macro, hytra, mobilenetv2_width, nas_bench_macro, nas_bench_201, nas_bench_mr, nats_sss  # noqa: F401
from . import bossnas_mbconv, bossnas_nats  # noqa: F401  (BossNAS block-wise spaces)
from . import nas_bench_201_darts  # noqa: F401  (registers "nas_bench_201_darts")
from . import darts  # noqa: F401  (registers "darts": DARTS' evaluation networks)
from .bnnas_imagenet import BNNASImageNetSpace
from .channel_bench_macro import ChannelBenchMacroSpace
from .nas_bench_macro import NASBenchMacroSpace


def build_space(cfg_space, num_classes=None):
    """Search space from a config section: ``type`` and the space's own keys (its constructor's
    keyword arguments, e.g. ``variant``, ``bins``, ``min_bins`` of ``channel_bench_macro``).

    ``num_classes`` (from ``data.num_classes``) is passed when the space takes it.

    Raises:
        ConfigError: unknown type, or a key the space does not take (naming the closest one).
    """
    import inspect

    from ..config import resolve_section
    from ..registry import SPACES
    section = resolve_section("space", cfg_space)
    cls = SPACES.get(section["type"])
    kwargs = {k: v for k, v in section.items() if k != "type"}
    if num_classes is not None and "num_classes" in inspect.signature(cls).parameters:
        kwargs["num_classes"] = num_classes
    return cls(**kwargs)


__all__ = ["SearchSpace", "WidthSpace", "BNNASImageNetSpace", "ChannelBenchMacroSpace", "NASBenchMacroSpace", "build_space"]
