"""BossNAS weight-sharing supernet of the NATS-Bench size space (slimmable convs + switchable BN).

Source: [BOSS] changlin31/BossNAS ``models/supernets/nats_supernet.py``,
``models/operations/nats_ops.py`` and the adapters (``channels_fix``) of
``siamese_supernets/siamese_supernets_nats.py`` (METHODS.md section 3.2).

The supernet has the module tree of the standalone
:class:`~nasbench.spaces.nats_sss.NATSSizeNetwork` at the widest width (64
channels everywhere), with every conv slimmable (a subnet uses the leftmost
channels) and every BN switchable: one ``BatchNorm2d`` per width and BN
position. A subnet of ``c1:...:c5`` therefore computes exactly the function of
the standalone network holding the leftmost weight slices and the
width-specific BNs (:meth:`BossNASNATSSupernet.export`, tested).

Per block ``b`` and width ``w`` there is an adapter
``Conv2d(w, P, 1, bias=False) + BatchNorm2d(P)`` that maps the block's
output to the projector width ``P`` (2048 in the reference); the adapter is
picked by the width of the block's last layer.

Where the reference differs: its stride-1 ``FactorizedReduce`` (the cell's
skip edge when the width changes) applies a ReLU before the 1x1 conv, while
NATS-Bench's does not; this supernet follows NATS-Bench so that subnets equal
the benchmark's networks. Its residual blocks also own an unused
``downsample_s`` (ReLU-conv1x1-BN for a stride-1 width change, which never
occurs in this space); it is left out. Neither changes any rating input
beyond that ReLU.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn as nn

from ..errors import ArchError
from ..ops.slimmable import SlimmableConv2d, SlimmableLinear, SwitchableBatchNorm2d
from .base import BlockwiseSupernet, Supernet
from ..spaces.nats_sss import CELL_EDGES, CHANNELS, LAYER_KINDS

if TYPE_CHECKING:
    from ..spaces.bossnas_nats import BossNASNATSSpace

MAX_C = max(CHANNELS)


class SlimReLUConvBN(nn.Module):
    """ReLU -> slimmable conv ``k x k`` -> switchable BN; ``forward(x, cout)``."""

    def __init__(self, k: int, stride: int = 1):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = SlimmableConv2d(MAX_C, MAX_C, k, stride)
        self.bn = SwitchableBatchNorm2d(CHANNELS)

    def forward(self, x, cout: int):
        return self.bn(self.conv(self.relu(x), cout))


class SlimConvBN(nn.Module):
    """Slimmable conv1x1 -> switchable BN (the cell's skip edge when the width changes); ``forward(x, cout)``."""

    def __init__(self):
        super().__init__()
        self.conv = SlimmableConv2d(MAX_C, MAX_C, 1)
        self.bn = SwitchableBatchNorm2d(CHANNELS)

    def forward(self, x, cout: int):
        return self.bn(self.conv(x, cout))


class SlimCell(nn.Module):
    """The fixed NATS cell on any width pair: ``forward(x, cout)``, ``cin = x.shape[1]``.

    The skip edge is the identity when ``cin == cout`` and ``edges[3]``
    (conv1x1 + BN) otherwise, like the standalone cell.
    """

    def __init__(self):
        super().__init__()
        self.edges = nn.ModuleList(SlimReLUConvBN(3) if op == "conv" else SlimConvBN() for _, _, op in CELL_EDGES)

    def forward(self, x, cout: int):
        nodes = [x]
        for node in (1, 2, 3):
            total = 0
            for i, (dst, src, op) in enumerate(CELL_EDGES):
                if dst != node:
                    continue
                h = nodes[src]
                if op == "skip" and h.shape[1] == cout:
                    total = total + h
                else:
                    total = total + self.edges[i](h, cout)
            nodes.append(total)
        return nodes[-1]


class SlimResBlock(nn.Module):
    """NATS residual block (stride 2) on any width pair: ``forward(x, cout)``."""

    def __init__(self):
        super().__init__()
        self.conv_a = SlimReLUConvBN(3, 2)
        self.conv_b = SlimReLUConvBN(3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), SlimmableConv2d(MAX_C, MAX_C, 1))

    def forward(self, x, cout: int):
        return self.downsample[1](self.downsample[0](x), cout) + self.conv_b(self.conv_a(x, cout), cout)


class MLPHead(nn.Sequential):
    """BossNAS projector / predictor: ``Linear(cin, hidden) -> BN1d -> ReLU -> Linear(hidden, cout)``.

    The reference's ``NonLinearNeckSimCLR`` with ``num_layers=2, with_bias=True,
    with_last_bn=False`` (``boss_necks.py``); ``pool=True`` first averages a
    ``[N, cin, H, W]`` map to ``[N, cin]`` (the projector's GAP). Output ``[N, cout]``.
    """

    def __init__(self, cin: int, hidden: int, cout: int, pool: bool = False):
        layers = [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)] if pool else []
        super().__init__(*layers, nn.Linear(cin, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, cout))
        for m in self.modules():  # kaiming fan-in for the linears, as the reference's init_linear='kaiming'
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)


class BossNASNATSSupernet(BlockwiseSupernet, Supernet):
    """Slimmable NATS-Bench Ss supernet with BossNAS blocks and adapters.

    Args:
        space: a :class:`~nasbench.spaces.bossnas_nats.BossNASNATSSpace` (grouping, classes, projector width).
        with_head: also build the classifier head (switchable last BN + ReLU,
            global pool, slimmable linear) so :meth:`forward` gives logits;
            BossNAS itself trains only the blocks, adapters and projectors.

    Attributes:
        stem: ``[SlimmableConv2d(3, 64, 3), SwitchableBatchNorm2d]`` (called with the width of layer 1).
        layers: the 5 searchable layers (:class:`SlimCell` / :class:`SlimResBlock`).
        adapters: ``adapters[b][i]`` maps a ``CHANNELS[i]``-channel output of block ``b`` to
            ``projector_channels`` channels.
        projectors: per block, :class:`MLPHead` GAP + ``projector_channels -> projector_hidden -> projection_dim``.
        predictors: per block, :class:`MLPHead` ``projection_dim -> projector_hidden -> projection_dim``
            (online side only; the BossNAS algorithm keeps an EMA copy of the rest as its target).
    """

    def __init__(self, space: "BossNASNATSSpace", with_head: bool = True):
        super().__init__()
        self.space = space
        self.stem = nn.Sequential(SlimmableConv2d(3, MAX_C, 3), SwitchableBatchNorm2d(CHANNELS))
        self.layers = nn.ModuleList(SlimCell() if kind == "cell" else SlimResBlock() for kind in LAYER_KINDS)
        p = space.projector_channels
        self.adapters = nn.ModuleList(
            nn.ModuleList(nn.Sequential(nn.Conv2d(w, p, 1, bias=False), nn.BatchNorm2d(p)) for w in CHANNELS)
            for _ in range(space.num_blocks))
        h, d = space.projector_hidden, space.projection_dim
        self.projectors = nn.ModuleList(MLPHead(p, h, d, pool=True) for _ in range(space.num_blocks))
        self.predictors = nn.ModuleList(MLPHead(d, h, d) for _ in range(space.num_blocks))
        self.with_head = bool(with_head)
        if self.with_head:
            self.lastact = nn.Sequential(SwitchableBatchNorm2d(CHANNELS), nn.ReLU(inplace=True))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = SlimmableLinear(MAX_C, space.num_classes)
        self.active = None

    # -- sub-network selection ------------------------------------------------
    def set_active(self, arch, side=None):
        """Activate the subnet ``arch`` (tuple of 5 widths or ``c1:...:c5`` key); ``side`` is accepted
        for the single-path protocol and ignored (channels are always the leftmost). Raises :class:`ArchError`."""
        self.active = self.space.validate(arch)

    def _widths(self, block: int, path) -> tuple:
        if path is None:
            if self.active is None:
                raise ArchError(f"{self.space.name}: no path given and no active architecture (call set_active)")
            return tuple(self.active[self.space.block_slice(block)])
        if isinstance(path, str):
            return self.space.decode_block_key(block, path)
        path = tuple(int(c) for c in path)
        sl = self.space.block_slice(block)
        if len(path) != sl.stop - sl.start or any(c not in CHANNELS for c in path):
            raise ArchError(f"{self.space.name}: block {block} path {path!r} must be {sl.stop - sl.start} "
                            f"widths from {list(CHANNELS)} (or a block key such as "
                            f"{'0' * (sl.stop - sl.start)!r})")
        return path

    # -- forward --------------------------------------------------------------
    def forward_block(self, x, block: int, path=None, adapt: bool = False):
        """Run ``block`` on ``x`` with the widths ``path``.

        Args:
            x: block 0: images ``[N, 3, H, W]`` (the stem runs first, at the
                width of the block's first layer); block ``b > 0``: the output of
                block ``b - 1`` (any width; it is read from ``x``).
            path: the block's widths (tuple of channel counts), its block key
                (``"34"``), or None for the active architecture's.
            adapt: also apply the block's adapter for the output width, giving
                ``[N, projector_channels, H', W']``.
        Returns:
            ``[N, w, H', W']`` with ``w`` the width of the block's last layer
            (or the adapted tensor).
        Raises:
            ArchError: bad path; IndexError: bad block.
        """
        widths = self._widths(block, path)
        sl = self.space.block_slice(block)
        if block == 0:
            x = self.stem[1](self.stem[0](x, widths[0]))
        for layer, w in zip(self.layers[sl], widths):
            x = layer(x, w)
        return self.adapt(x, block) if adapt else x

    def project(self, x, block: int, path=None):
        """Projection ``[N, projection_dim]`` of block ``block`` run on ``x`` with ``path``
        (block, adapter, projector; ``x`` as in :meth:`forward_block`)."""
        return self.projectors[block](self.forward_block(x, block, path, adapt=True))

    def predict(self, x, block: int, path=None):
        """Online prediction ``[N, projection_dim]``: :meth:`project` followed by the block's predictor."""
        return self.predictors[block](self.project(x, block, path))

    def adapt(self, x, block: int):
        """Adapter of ``block`` for the width of ``x``: ``[N, w, H, W]`` -> ``[N, projector_channels, H, W]``."""
        try:
            i = CHANNELS.index(x.shape[1])
        except ValueError:
            raise ArchError(f"{self.space.name}: no adapter for {x.shape[1]} channels") from None
        return self.adapters[block][i](x)

    def forward_features(self, x):
        """Feature map of the active subnet after its last layer: ``[N, c5, H/4, W/4]``."""
        for b in range(self.space.num_blocks):
            x = self.forward_block(x, b)
        return x

    def forward(self, x):
        """Logits ``[N, num_classes]`` of the active subnet (needs ``with_head``)."""
        if not self.with_head:
            raise RuntimeError(f"{self.space.name}: supernet built without a classifier head")
        return self.classifier(self.pool(self.lastact(self.forward_features(x))).flatten(1))

    # -- structure --------------------------------------------------------------
    def block_modules(self, block: int) -> list[nn.Module]:
        """Modules block ``block`` runs in :meth:`predict`: its layers (and the stem for block 0),
        adapters, projector and predictor (BossNAS recalibrates their BNs before rating)."""
        sl = self.space.block_slice(block)
        return ([self.stem] if block == 0 else []) + list(self.layers[sl]) + [
            self.adapters[block], self.projectors[block], self.predictors[block]]


    def switchable_bns(self) -> list[SwitchableBatchNorm2d]:
        """Every switchable BN (one per BN position; each holds one BN per width)."""
        return [m for m in self.modules() if isinstance(m, SwitchableBatchNorm2d)]

    def export(self, arch=None) -> nn.Module:
        """Standalone ``space.build(arch)`` with this supernet's weights (default: the active arch).

        Convs and the classifier get the leftmost weight slices, BNs the
        parameters and running statistics of the width-specific BN; the
        result computes the same function as the supernet with ``arch`` active.
        """
        import torch

        arch = self.active if arch is None else self.space.validate(arch)
        if arch is None:
            raise ArchError(f"{self.space.name}: export needs an architecture (or call set_active first)")
        if not self.with_head:
            raise RuntimeError(f"{self.space.name}: export needs the classifier head (with_head=True)")
        sub = self.space.build(arch)
        with torch.no_grad():
            for name, m in sub.named_modules():
                if not name:
                    continue
                src = self.get_submodule(name)
                if isinstance(m, nn.BatchNorm2d):
                    m.load_state_dict(src.bn(m.num_features).state_dict())
                elif isinstance(m, nn.Conv2d):
                    m.weight.copy_(src.weight[:m.out_channels, :m.in_channels])
                elif isinstance(m, nn.Linear):
                    m.weight.copy_(src.weight[:, :m.in_features])
                    m.bias.copy_(src.bias)
        return sub


__all__ = ["BossNASNATSSupernet", "MLPHead", "SlimCell", "SlimResBlock", "SlimReLUConvBN", "SlimConvBN"]
