"""BossNAS MBConv search space (ImageNet): 18 searchable layers in 5 blocks, 4 MBConv+SE operators each.

Source: [BOSS] changlin31/BossNAS ``searching/bossnas/models/supernets/mbconv_supernet.py``,
``models/operations/mbconv_ops.py`` / ``operation_dict.py`` (timm 0.3.2 blocks)
and ``ranking_mbconv/`` (METHODS.md section 3.2); the fixed last layer and
the head follow DNA ([DNA] changlin31/DNA ``searching/process_potential.py``:
``MB6_3x3_se0.25(192, 320)``, then ``Conv1x1_BN_swish(320, 1280)``, pool and
``Linear(1280, 1000)``), the same authors' space that BossNAS's copies.

Network for a ``[N, 3, 224, 224]`` input (activation swish = SiLU everywhere):

* stem: conv3x3 3->32 stride 2 (no bias) + BN + SiLU (112x112), then
  ``features[0]`` = MB1_k3 with SE: dw3x3 + BN + SiLU, SE(32 -> 8), pw 32->16 + BN;
* ``features[1..18]`` = the searchable layers, in blocks ``(c, n, s)`` =
  (24, 2, 2), (40, 4, 2), (80, 4, 2), (112, 4, 1), (192, 4, 2): the first
  layer of a block has stride ``s`` and maps to ``c`` channels (maps 56, 28,
  14, 14, 7);
* ``features[19]`` = the fixed last layer MB6_k3 + SE, 192 -> 320;
* head: conv1x1 320->1280 (no bias) + BN + SiLU, global average pool,
  optional dropout, ``Linear(1280, num_classes)``.

Operators (gene value = upstream ``PRIMITIVES`` index): 0 MB6_k3, 1 MB6_k5,
2 MB3_k3, 3 MB3_k5, each :class:`~nasbench.ops.mbconv.MBConvSE`: pw1x1 ->
``make_divisible(inp * t, 8)`` + BN + SiLU, dw kxk + BN + SiLU, SE to
``round(inp / 4)`` channels, pw-linear + BN.

Shortcut (``shortcut`` argument): ``"projection"`` (default) is the
reference supernet's op, where *every* layer is residual and a layer that
changes the shape routes its input through AvgPool2d(2, ceil) (stride 2)
and conv1x1 + BN (width change); in the supernet the 4 candidates of a layer
share that projection, as upstream's do. ``"identity"`` is EfficientNet's
rule (residual only when stride 1 and equal widths), as in DNA's retraining
code. BossNAS does not publish its MBConv retraining network, so which one
its 23 retrained ImageNet models used cannot be checked.

Architecture: a tuple of 18 ints in 0..3; key = the 5 block codes joined by
``-`` (the ranking files' block keys), e.g. ``"11-1111-1101-1011-1101"``.
:meth:`BossNASMBConvSpace.validate` also accepts the reference's nested
lists ``[[1, 1], [1, 1, 1, 1], ...]``.

Cost convention: FLOPs are conv + linear MACs for one 224x224 image (SE
convs included; BN, activations, pooling, bias and the SE/residual
products not counted), params every parameter; both from counted
per-(layer, op) lookup tables. Neither BossNAS nor METHODS.md gives a
reference parameter or MAdds figure for this space (its README reports
MAdds only for the HyTra models), so the counts are checked against
hand-derived formulas and timm's blocks in the tests, not against upstream
numbers.
"""
from __future__ import annotations

import torch.nn as nn

from ..errors import ArchError
from ..ops.mbconv import DepthwiseSeparableSE, MBConvSE, projection_shortcut
from ..registry import SPACES
from .blockwise import BlockwiseMixin
from .op_choice import OpChoiceSpace, conv_out_size, stage_layer_shapes

#: Operator names, indexed by gene value (upstream ``PRIMITIVES``; all with SE 0.25).
OP_NAMES = ("MB6_k3", "MB6_k5", "MB3_k3", "MB3_k5")
#: ``(expansion t, kernel k)`` of each operator.
OP_SPECS = ((6, 3), (6, 5), (3, 3), (3, 5))
#: ``(out channels, layers, stride of the first layer)`` of the 5 searchable blocks.
BLOCKS = ((24, 2, 2), (40, 4, 2), (80, 4, 2), (112, 4, 1), (192, 4, 2))
BLOCK_SIZES = tuple(n for _, n, _ in BLOCKS)
STEM_CHANNELS = 32
FIRST_CHANNELS = 16
#: The fixed last layer: MB6_k3 + SE to 320 channels, stride 1.
LAST_CHANNELS = 320
LAST_OP = 0
HEAD_CHANNELS = 1280
SE_RATIO = 0.25
INPUT_SIZE = 224
SHORTCUTS = ("projection", "identity")


def layer_shapes(input_size: int = INPUT_SIZE) -> list[tuple[int, int, int, int]]:
    """Per searchable layer: ``(inp, oup, stride, input H = W)``."""
    return stage_layer_shapes(BLOCKS, FIRST_CHANNELS, input_size)


class BossNASMBConvNetwork(nn.Module):
    """Standalone BossNAS MBConv network (or the supernet's skeleton): ``[N, 3, H, W]`` -> ``[N, num_classes]``.

    ``features[0]`` is the fixed MB1 layer, ``features[1 + l]`` searchable
    layer ``l`` and ``features[-1]`` the fixed last layer.
    """

    def __init__(self, layers, num_classes: int = 1000, shortcut: str = "projection", dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False), nn.BatchNorm2d(STEM_CHANNELS),
                                  nn.SiLU(inplace=True))
        first = DepthwiseSeparableSE(STEM_CHANNELS, FIRST_CHANNELS, 1, 3, SE_RATIO)
        t, k = OP_SPECS[LAST_OP]
        last = MBConvSE(BLOCKS[-1][0], LAST_CHANNELS, 1, t, k, SE_RATIO, shortcut=shortcut)
        self.features = nn.Sequential(first, *layers, last)
        self.head = nn.Sequential(nn.Conv2d(LAST_CHANNELS, HEAD_CHANNELS, 1, bias=False),
                                  nn.BatchNorm2d(HEAD_CHANNELS), nn.SiLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x):
        return self.classifier(self.dropout(self.head(self.features(self.stem(x))).flatten(1)))


@SPACES.register("bossnas_mbconv")
class BossNASMBConvSpace(BlockwiseMixin, OpChoiceSpace):
    """BossNAS MBConv space: 18 genes in 0..3, blocks ``[2, 4, 4, 4, 4]`` (see module doc).

    Args:
        variant: None, ``""`` or ``"imagenet"``.
        num_classes: classifier outputs (1000).
        shortcut: ``"projection"`` (the reference supernet's op, default) or ``"identity"``.
        dropout: dropout before the classifier of built networks (default 0; no cost).
        projector_hidden, projection_dim: widths of the supernet's per-block BossNAS projector
            and predictor MLPs (4096, 256 in the reference); built networks have none.
    Raises:
        ArchError: unknown variant or shortcut.
    """

    name = "bossnas_mbconv"
    benchmark = None
    input_size = INPUT_SIZE
    block_sizes = BLOCK_SIZES
    num_ops = len(OP_NAMES)

    def __init__(self, variant: str | None = None, num_classes: int = 1000, shortcut: str = "projection",
                 dropout: float = 0.0, projector_hidden: int = 4096, projection_dim: int = 256):
        if variant not in (None, "", "imagenet"):
            raise ArchError(f"{self.name}: unknown variant {variant!r}; the space has only 'imagenet'")
        if shortcut not in SHORTCUTS:
            raise ArchError(f"{self.name}: shortcut must be one of {list(SHORTCUTS)}, got {shortcut!r}")
        self.num_classes = int(num_classes)
        self.shortcut = shortcut
        self.dropout = float(dropout)
        self.projector_hidden, self.projection_dim = int(projector_hidden), int(projection_dim)
        if self.projector_hidden < 1 or self.projection_dim < 1:
            raise ArchError(f"{self.name}: projector_hidden and projection_dim must be positive, got "
                            f"{projector_hidden!r}, {projection_dim!r}")
        self.block_widths = tuple(c for c, _, _ in BLOCKS)
        self.layers = layer_shapes(INPUT_SIZE)
        self._ops = tuple(range(len(OP_NAMES)))

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return len(self.layers)

    def choices(self, i: int):
        if not 0 <= int(i) < len(self.layers):
            raise IndexError(f"{self.name}: gene index {i} out of range 0..{len(self.layers) - 1}")
        return self._ops

    def gene_error(self, arch: tuple, i: int) -> str:
        b = next(b for b in range(self.num_blocks) if i < self.block_slice(b).stop)
        return (f"{self.name}: gene {i} (block {b}, layer {i - self.block_slice(b).start}) of {arch!r} is {arch[i]}, "
                f"allowed values are 0..3 ({', '.join(f'{v}={n}' for v, n in enumerate(OP_NAMES))})")

    def validate(self, arch):
        """Flat 18-gene tuple, key string, or the reference's nested lists (one list per block).

        Raises:
            ArchError: wrong block lengths, gene count or values (the message names the position).
        """
        if not isinstance(arch, str):
            try:
                items = list(arch)
            except TypeError:
                raise ArchError(f"{self.name}: architecture {arch!r} is not a sequence") from None
            if items and all(isinstance(a, (list, tuple)) for a in items):
                lens = [len(a) for a in items]
                if lens != list(BLOCK_SIZES):
                    raise ArchError(f"{self.name}: nested architecture {arch!r} has blocks of lengths {lens}, "
                                    f"expected {list(BLOCK_SIZES)}")
                arch = [g for a in items for g in a]
        return super().validate(arch)

    # -- keys -----------------------------------------------------------------
    def encode(self, arch) -> str:
        """Architecture -> ``"11-1111-1101-1011-1101"`` (block codes joined by ``-``)."""
        return "-".join(self.block_keys(arch))

    def decode(self, key) -> tuple:
        """``"11-1111-1101-1011-1101"`` -> tuple of 18 genes.

        Raises:
            ArchError: not 5 ``-``-separated codes of lengths 2, 4, 4, 4, 4
                with digits 0..3 (the message names the key and the block).
        """
        if not isinstance(key, str):
            raise ArchError(f"{self.name}: key {key!r} must be a string such as {self.example_key()!r}")
        parts = key.split("-")
        if len(parts) != self.num_blocks:
            raise ArchError(f"{self.name}: key {key!r} must have {self.num_blocks} '-'-separated block codes "
                            f"of lengths {list(BLOCK_SIZES)}, got {len(parts)}")
        try:
            return self.arch_from_block_keys(parts)
        except ArchError as e:
            raise ArchError(f"{self.name}: key {key!r}: {e}") from None

    @staticmethod
    def example_key() -> str:
        """The first architecture of the reference's ranking script."""
        return "11-1111-1101-1011-1101"

    # -- networks -------------------------------------------------------------
    def layer_shapes(self) -> list[tuple[int, int, int, int]]:
        return list(self.layers)

    def make_op(self, layer: int, value: int, downsample: nn.Module | None = None) -> nn.Module:
        if value not in self._ops:
            raise ArchError(f"{self.name}: unknown operator {value!r}, allowed values are 0..3")
        inp, oup, stride, _ = self.layers[layer]
        t, k = OP_SPECS[value]
        return MBConvSE(inp, oup, stride, t, k, SE_RATIO, shortcut=self.shortcut, downsample=downsample)

    def make_network(self, layers, num_classes: int) -> nn.Module:
        return BossNASMBConvNetwork(layers, num_classes=num_classes, shortcut=self.shortcut, dropout=self.dropout)

    def build_supernet(self):
        """:class:`~nasbench.supernets.bossnas_mbconv.BossNASMBConvSupernet` with all 4 operators per layer.

        With ``shortcut="projection"`` the 4 candidates of a layer that changes
        the shape share one projection module, as upstream's do.
        """
        from ..supernets.bossnas_mbconv import BossNASMBConvSupernet
        from ..supernets.choice import ChoiceBlock
        blocks = []
        for i, (inp, oup, stride, _) in enumerate(self.layers):
            shared = projection_shortcut(inp, oup, stride) if self.shortcut == "projection" else None
            blocks.append(ChoiceBlock({v: self.make_op(i, v, downsample=shared) for v in self.choices(i)}))
        return BossNASMBConvSupernet(self.make_network(blocks, self.num_classes), self)


__all__ = ["BossNASMBConvSpace", "BossNASMBConvNetwork", "OP_NAMES", "OP_SPECS", "BLOCKS", "BLOCK_SIZES",
           "layer_shapes"]
