"""Block-wise siamese supernet of the HyTra space (BossNAS's hybrid CNN-transformer search).

Source: [BOSS] changlin31/BossNAS ``searching/bossnas/models/supernets/hytra_supernet.py``
(``MixOps``: every layer holds the operators of its scales, each with a stride-1 entry for an
input at its own scale and a stride-2 entry for an input at twice its side),
``models/operations/hytra_ops.py`` (the ops: ``conv1/peg/bn1`` + ``downsample`` and their
``_d`` stride-2 twins in front of a shared body), ``siamese_supernets/boss_necks.py``
(``NonLinearNeckSimCLRProject``: per input width a depthwise ``k = s`` stride-``s`` conv +
1x1 conv + BN to the projector width, then GAP and the MLP) and
``configs/hytra_bs64_accumulate8_ep6_multi_aug_gpus8.py``. METHODS.md section 3.

Structure (``w`` = ``space.supernet_width``, 1 = the paper's widths):

* stem: conv7x7 s2 3 -> 64w, BN, ReLU, max pool 3x3 s2 (side/4: the "56" map);
* 16 searchable layers; layer ``l`` holds operator ``o`` (:data:`~nasbench.spaces.hytra.OPS`)
  when its scale is reachable there (layer 0: 56, 28; layer 1: 56, 28, 14; later: all);
  each is a :class:`DualEntryOp`: per input width an *entry* ``(proj, shortcut)`` -
  ``proj`` = conv1x1 -> PEG (stride 1, or 2 for an input at twice the side) -> BN,
  ``shortcut`` = :func:`~nasbench.ops.hytra.avg_down_shortcut` - and one shared *body*:
  ResConv ``act, conv3x3, BN, act, conv1x1 -> 4 planes, BN`` or ResAtt ``act, MHSA, BN,
  act, conv1x1, BN``; output ``act(body(proj(x)) + shortcut(x))``. Planes 64, 128, 256, 512
  (x w) at 56, 28, 14, 7; attention heads 4 at 14 and 8 at 7 of ``64 w`` channels each;
* per block an adapter per feature width (depthwise conv with kernel = stride = the ratio of
  the side to the 7-scale side, 1x1 conv to ``4 * 512 w`` channels, BN; identity at 7), a
  projector (GAP, Linear -> ``projector_hidden``, BN1d, ReLU, Linear -> ``projection_dim``)
  and a predictor (``projection_dim -> projector_hidden -> projection_dim``).

Where this differs from the reference (stated, deliberate): the stride-2 entry's shortcut is the
retraining network's average-pool shortcut (the reference's search ops use a conv3x3 stride 2 +
BN + act there, and a conv1x1 + BN + act for a width change); a layer-0 operator takes the
stem's 64 channels through its own entry (the reference first maps the stem output to the
operator's scale with a shared depthwise-conv "downsample"); the attention has 64-channel heads
like BossNet-T (the search ops of the reference use ``dim_head`` 128 with half the heads' count
of channels); and the operators exist for every reachable scale of a layer, so every candidate
path of the space's lists runs (the reference's ``stage_depths = [4, 3, 2, 2]`` cannot run a
block 1 input at 56 or a block 2 input at 28). Like the reference's search supernet, the
operators use ReLU and no SE.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn as nn

from ..errors import ArchError
from ..ops.hytra import MHSA, PEG, avg_down_shortcut
from ..spaces.hytra import BLOCK_LAYERS, NUM_LAYERS, OP_SCALE, OPS, SCALES, STAGE_HEADS, STAGE_PLANES, STEM_SCALE
from .base import BlockwiseSupernet, Supernet
from .bossnas_nats import MLPHead

if TYPE_CHECKING:
    from ..spaces.hytra import HyTraSpace

__all__ = ["BossNASHyTraSupernet", "DualEntryOp", "reachable_scales"]


def reachable_scales(layer: int, stem_scale: int, num_scales: int) -> list[int]:
    """Scale indices (0 = the smallest side) a layer ``layer`` (0..15) can work at: every scale
    at most ``layer + 1`` halvings below the stem's."""
    return [k for k in range(num_scales) if stem_scale - (layer + 1) <= k <= stem_scale]


class DualEntryOp(nn.Module):
    """One operator of one supernet layer: an entry per input width and a shared body.

    ``entries[str(inp)]`` = ``(proj, shortcut)`` for an ``inp``-channel input (stride 1 at the
    operator's scale, stride 2 from twice its side); ``forward(x)`` picks the entry by
    ``x.shape[1]``: ``[N, inp, H, W]`` -> ``[N, oup, ceil(H/s), ceil(W/s)]``.

    Args:
        kind: ``"ResConv"`` or ``"ResAtt"``.
        inputs: ``{input channels: stride}`` of the entries.
        planes: bottleneck width (``oup = 4 * planes``); ResAtt: ``heads * dim_head`` channels inside.
        heads, dim_head: attention heads and their width (ResAtt only).
    Raises:
        ArchError (in forward): an input width with no entry.
    """

    def __init__(self, kind: str, inputs: dict, planes: int, heads: int = 1, dim_head: int = 64):
        super().__init__()
        oup = 4 * planes
        width = planes if kind == "ResConv" else heads * dim_head
        self.kind, self.oup = kind, oup
        self.entries = nn.ModuleDict()
        for inp, stride in inputs.items():
            self.entries[str(inp)] = nn.ModuleDict({
                "proj": nn.Sequential(nn.Conv2d(inp, width, 1, bias=False), PEG(width, stride), nn.BatchNorm2d(width)),
                "shortcut": avg_down_shortcut(inp, oup, stride)})
        mid = (nn.Conv2d(width, width, 3, 1, 1, bias=False) if kind == "ResConv" else MHSA(width, heads, dim_head))
        self.body = nn.Sequential(nn.ReLU(inplace=True), mid, nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, oup, 1, bias=False), nn.BatchNorm2d(oup))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        entry = self.entries[str(x.shape[1])] if str(x.shape[1]) in self.entries else None
        if entry is None:
            raise ArchError(f"hytra supernet: a {self.kind} here takes {sorted(int(k) for k in self.entries)} "
                            f"input channels, got {x.shape[1]}")
        return self.act(self.body(entry["proj"](x)) + entry["shortcut"](x))


class BossNASHyTraSupernet(BlockwiseSupernet, Supernet):
    """HyTra supernet with BossNAS blocks, adapters, projectors and predictors (see module doc).

    Args:
        space: the :class:`~nasbench.spaces.hytra.HyTraSpace` (``supernet_width``,
            ``projector_hidden``, ``projection_dim``).

    Attributes:
        stem, layers (``layers[l][str(op)]``: :class:`DualEntryOp`), adapters (``adapters[b][str(c)]``),
        projectors, predictors: see the module doc.
    """

    def __init__(self, space: "HyTraSpace"):
        super().__init__()
        self.space = space
        w = float(space.supernet_width)
        scaled = lambda c: max(1, int(round(c * w)))  # noqa: E731
        stem = scaled(64)
        # per scale index k (0 = side 7): planes and heads (STAGE_* are ordered 56, 28, 14, 7)
        planes = [scaled(STAGE_PLANES[len(SCALES) - 1 - k]) for k in range(len(SCALES))]
        heads = [STAGE_HEADS[len(SCALES) - 1 - k] for k in range(len(SCALES))]
        dim_head = scaled(64)
        self.channels = [4 * p for p in planes]
        self.block_layers = BLOCK_LAYERS
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        self.layers = nn.ModuleList()
        for layer in range(NUM_LAYERS):
            ops = nn.ModuleDict()
            scales = reachable_scales(layer, STEM_SCALE, len(SCALES))
            for o, (kind, _) in enumerate(OPS):
                k = OP_SCALE[o]
                if k not in scales:
                    continue
                inputs = {}
                if layer == 0:
                    inputs[stem] = 1 if k == STEM_SCALE else 2
                else:
                    prev = reachable_scales(layer - 1, STEM_SCALE, len(SCALES))
                    if k in prev:
                        inputs[self.channels[k]] = 1
                    if k + 1 in prev:
                        inputs[self.channels[k + 1]] = 2
                ops[str(o)] = DualEntryOp(kind, inputs, planes[k], heads[k], dim_head)
            self.layers.append(ops)
        top = self.channels[0]
        self.adapters = nn.ModuleList()
        for _ in range(space.num_blocks):
            ad = nn.ModuleDict()
            for k in range(1, len(SCALES)):
                c, s = self.channels[k], 2 ** k
                ad[str(c)] = nn.Sequential(nn.Conv2d(c, c, s, s, groups=c, bias=False), nn.Conv2d(c, top, 1, bias=False),
                                           nn.BatchNorm2d(top))
            self.adapters.append(ad)
        h, d = space.projector_hidden, space.projection_dim
        self.projectors = nn.ModuleList(MLPHead(top, h, d, pool=True) for _ in range(space.num_blocks))
        self.predictors = nn.ModuleList(MLPHead(d, h, d) for _ in range(space.num_blocks))
        self._init()
        self.active = None

    def _init(self):
        """Kaiming-normal (fan_out) convs, BN 1/0, last BN of every operator body zeroed
        (the reference's ``zero_init_last_bn``); the heads keep :class:`MLPHead`'s init."""
        for m in list(self.stem.modules()) + list(self.layers.modules()) + list(self.adapters.modules()):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.layers.modules():
            if isinstance(m, DualEntryOp):
                nn.init.zeros_(m.body[-1].weight)

    # -- protocol ---------------------------------------------------------------
    def set_active(self, arch, side: str = "left") -> None:
        """Remember ``arch`` (validated); :meth:`forward_block` with ``path=None`` runs its paths."""
        self.active = self.space.validate(arch)

    def export(self, arch, side: str = "left") -> nn.Module:
        """Not available: the supernet's operators (ReLU, no SE, dual entries) are not BossNet-T's
        layers; retrain ``space.build(arch)`` from scratch, as BossNAS does."""
        raise NotImplementedError("hytra: the BossNAS supernet has no export; retrain space.build(arch)")

    def _path(self, block: int, path) -> tuple:
        if path is None:
            if self.active is None:
                raise ArchError(f"{self.space.name}: no path given and no active architecture (call set_active)")
            return tuple(self.active[block * self.block_layers:(block + 1) * self.block_layers])
        if isinstance(path, str):
            return self.space.decode_block_key(block, path)
        path = tuple(int(o) for o in path)
        if len(path) != self.block_layers:
            raise ArchError(f"{self.space.name}: block {block} path {path!r} must have {self.block_layers} operators")
        return path

    def forward_block(self, x, block: int, path=None):
        """Run ``block`` (0..3) on ``x`` with the operators ``path`` (key such as ``"5433"``, tuple, or None).

        ``x``: images ``[N, 3, H, W]`` for block 0 (the stem runs first), else the previous block's
        output. Returns ``[N, C, h, w]`` (``C`` = the last operator's scale's width).

        Raises:
            ArchError: a bad path, an operator that does not exist at its layer, or one whose
                scale does not follow its input's.
        """
        ops = self._path(block, path)
        if block == 0:
            x = self.stem(x)
        for j, o in enumerate(ops):
            layer = self.layers[block * self.block_layers + j]
            if str(o) not in layer:
                raise ArchError(f"{self.space.name}: operator {o} cannot run at layer {block * self.block_layers + j} "
                                f"(its scale is not reachable there)")
            x = layer[str(o)](x)
        return x

    def adapt(self, x, block: int):
        """Adapter of ``block`` for the width of ``x`` -> ``[N, 4 * 512 w, h', w']`` (identity at the top width)."""
        if x.shape[1] == self.channels[0]:
            return x
        key = str(x.shape[1])
        if key not in self.adapters[block]:
            raise ArchError(f"{self.space.name}: no adapter for {x.shape[1]} channels")
        return self.adapters[block][key](x)

    def project(self, x, block: int, path=None):
        """Projection ``[N, projection_dim]`` of ``block`` on ``x`` with ``path`` (block, adapter, projector)."""
        return self.projectors[block](self.adapt(self.forward_block(x, block, path), block))

    def predict(self, x, block: int, path=None):
        """Online prediction ``[N, projection_dim]``: :meth:`project` followed by the block's predictor."""
        return self.predictors[block](self.project(x, block, path))

    def forward(self, x):
        """Feature map ``[N, C, h, w]`` of the active architecture after its last block (no classifier)."""
        for b in range(self.space.num_blocks):
            x = self.forward_block(x, b)
        return x

    def block_modules(self, block: int) -> list[nn.Module]:
        """Modules of ``block``: its 4 layers (and the stem for block 0), adapters, projector, predictor."""
        sl = slice(block * self.block_layers, (block + 1) * self.block_layers)
        return (([self.stem] if block == 0 else []) + list(self.layers[sl])
                + [self.adapters[block], self.projectors[block], self.predictors[block]])

