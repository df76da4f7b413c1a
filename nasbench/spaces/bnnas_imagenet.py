"""BN-NAS / SPOS ImageNet operator search space (21 layers x 6 MBConv ops + identity).

Source: bychen515/BNNAS (the space of ABS / SPOS as re-implemented there):
``BNNAS/supernet`` + ``search/config.py`` (``backbone_info``, ``blocks_keys``),
``search/ea.py`` (``change_depth``, ``get_arch_flops``) and the retrain logs
``BNNAS/retrain/eval-SPOS/log.txt`` and ``SPOS/retrain/eval-SPOS/log.txt``
(printed blocks, FLOPs and parameter counts); paper "BN-NAS: Neural
Architecture Search with Batch Normalization" (ICCV'21). METHODS.md 2.2.

Network for a ``[N, 3, 224, 224]`` input:

* stem: conv3x3 3->40 (stride 2, pad 1, no bias) + BN + ReLU6, 112x112;
* a fixed MBConv with expansion 1, kernel 3, stride 1, 40->24, which has *no*
  expand conv (dw3x3 + BN + ReLU6, pw-linear 1x1 + BN, no shortcut as
  40 != 24); it is ``features[0]``;
* 21 searchable layers ``features[1..21]`` in stages ``(c, n, s)`` =
  (32,4,2), (56,4,2), (112,4,2), (128,4,1), (256,4,2), (432,1,1): the first
  layer of a stage has stride ``s`` and maps to ``c`` channels, the others
  have stride 1 (feature maps 56, 28, 14, 14, 7, 7);
* head: conv1x1 432->1728 (no bias) + BN + ReLU6 + global average pool, then
  ``Linear(1728, num_classes)`` (with bias).

Operators (gene value = index into upstream ``blocks_keys``):

* ``0..5`` = MB3_k3, MB6_k3, MB3_k5, MB6_k5, MB3_k7, MB6_k7: pw conv1x1
  inp->inp*t + BN + ReLU6, depthwise kxk (stride s, pad k//2) + BN + ReLU6,
  pw-linear conv1x1 -> oup + BN, shortcut when stride 1 and inp == oup. All
  convs have no bias. ``last_bn`` is the BN after the pw-linear conv (index 7
  of ``conv``, the one BN-NAS trains and scores);
* ``-1`` = identity (no parameters, ``last_bn`` None). It is the only choice
  at positions 1, 5, 6 and 9 (0-based; upstream forces them with
  ``change_depth`` during supernet training and search) and not allowed
  elsewhere, so the space has 6**17 architectures.

Keys are the genes joined by commas, e.g.
``"3,-1,0,4,0,-1,-1,0,4,-1,4,4,1,4,2,0,0,4,0,2,2"`` (the BN-NAS README arch);
:meth:`BNNASImageNetSpace.decode` also accepts surrounding brackets and
whitespace separators (upstream's ``--model_id '3 -1 0 ...'``).

Where the reference differs from the METHODS.md text: activations are ReLU6,
not ReLU; the fixed t=1 block has no expand conv (checked: with it the README
arch would have 5,230,216 parameters instead of the logged 5,228,536); the
reference pools with ``AvgPool2d(input_size // 32)``, here an adaptive global
average pool (identical at 224, and smaller inputs work). The reference
network file of the retrain script (``model.py``) is not published, so
whether it applies dropout before the classifier cannot be checked; the
``dropout`` argument (default 0) adds it without changing any cost.

Cost convention: FLOPs are multiply-accumulates (MACs) of conv and linear
layers for one 224x224 image (BN, ReLU6, pooling, bias and shortcut additions
not counted), from the base class's counted per-(layer, op) lookup table;
params count every parameter, BN affine ones and the classifier bias
included. Parameters reproduce the retrain logs exactly (README arch
5,228,536, SPOS arch 5,780,560). The logged FLOPs (473.549240M and
468.807608M) come from upstream's lookup table, measured with the repo's old
thop, which counts the classifier as ``(2 * 1728 - 1) * num_classes``
multiplies + adds rather than ``1728 * num_classes`` MACs; they equal
``flops(arch) + 1727 * num_classes`` exactly (:meth:`reference_flops`), so
upstream's search limit of 475M is 473.273M in :meth:`flops` units.
"""
from __future__ import annotations

import re

import torch.nn as nn

from ..errors import ArchError
from ..ops.mbconv import MBConv
from ..registry import SPACES
from .base import short_repr
from .op_choice import OpChoiceSpace, conv_out_size, stage_layer_shapes

#: Operator names, indexed by gene value (upstream ``blocks_keys``).
OP_NAMES = ("MB3_k3", "MB6_k3", "MB3_k5", "MB6_k5", "MB3_k7", "MB6_k7")
#: ``(expansion t, kernel k)`` of each operator.
OP_SPECS = ((3, 3), (6, 3), (3, 5), (6, 5), (3, 7), (6, 7))
IDENTITY = -1
#: 0-based searchable positions that are always the identity (upstream ``change_depth``).
IDENTITY_POSITIONS = (1, 5, 6, 9)
#: ``(out channels c, layers n, stride of the first layer s)`` per stage.
STAGES = ((32, 4, 2), (56, 4, 2), (112, 4, 2), (128, 4, 1), (256, 4, 2), (432, 1, 1))
STEM_CHANNELS = 40
FIRST_BLOCK_CHANNELS = 24
HEAD_CHANNELS = 1728
INPUT_SIZE = 224


class Identity(nn.Module):
    """Identity op (gene -1): ``[N, C, H, W]`` -> the same tensor; no parameters."""

    @property
    def last_bn(self):
        """None: the identity has no BN (BN-NAS scores it 0)."""
        return None

    def forward(self, x):
        return x


def make_op(op: int, inp: int, oup: int, stride: int) -> nn.Module:
    """Module of operator ``op`` (-1 or 0..5) for a layer ``inp -> oup`` with ``stride``.

    Raises:
        ArchError: unknown ``op``, or the identity for a layer that changes shape.
    """
    if op == IDENTITY:
        if stride != 1 or inp != oup:
            raise ArchError(f"bnnas_imagenet: the identity op needs stride 1 and inp == oup, "
                            f"got {inp}->{oup} stride {stride}")
        return Identity()
    if not 0 <= op < len(OP_SPECS):
        raise ArchError(f"bnnas_imagenet: unknown operator {op!r}, allowed values are -1..{len(OP_SPECS) - 1}")
    t, k = OP_SPECS[op]
    return MBConv(inp, oup, stride, t, k, act=nn.ReLU6)


def layer_shapes(input_size: int = INPUT_SIZE) -> list[tuple[int, int, int, int]]:
    """Per searchable layer: ``(inp, oup, stride, input H = W)`` for an ``input_size`` image."""
    return stage_layer_shapes(STAGES, FIRST_BLOCK_CHANNELS, input_size)


class BNNASImageNetNetwork(nn.Module):
    """Standalone BN-NAS ImageNet network, or the supernet's skeleton.

    ``[N, 3, H, W]`` (224 for ImageNet; any H, W the strides allow) -> logits
    ``[N, num_classes]``. ``features[0]`` is the fixed t=1 block and
    ``features[1 + l]`` searchable layer ``l``.

    Args:
        layers: the 21 searchable layer modules (ops or the supernet's choice blocks).
        num_classes: classifier outputs.
        dropout: dropout probability before the classifier (0: none).
    """

    def __init__(self, layers, num_classes: int = 1000, dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False), nn.BatchNorm2d(STEM_CHANNELS),
                                  nn.ReLU6(inplace=True))
        first = MBConv(STEM_CHANNELS, FIRST_BLOCK_CHANNELS, 1, 1, 3, act=nn.ReLU6)
        self.features = nn.Sequential(first, *layers)
        ch = STAGES[-1][0]
        self.out = nn.Sequential(nn.Conv2d(ch, HEAD_CHANNELS, 1, bias=False), nn.BatchNorm2d(HEAD_CHANNELS),
                                 nn.ReLU6(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x):
        return self.classifier(self.dropout(self.out(self.features(self.stem(x))).flatten(1)))


_SEP = re.compile(r"[\s,]+")


@SPACES.register("bnnas_imagenet")
class BNNASImageNetSpace(OpChoiceSpace):
    """BN-NAS / SPOS ImageNet space: 21 genes; ``(-1,)`` at positions 1, 5, 6, 9, else ``(0, ..., 5)``.

    Architectures are tuples of 21 ints; keys are comma-separated genes
    (``encode``/``decode``). ``flops`` are conv + linear MACs at 224x224 from
    the counted lookup table (:meth:`lut_flops`), ``params`` all parameters
    from a per-(layer, op) table counted once; no network is built per call.
    See the module docstring for the network and the cost convention.

    Args:
        variant: None, ``""`` or ``"imagenet"`` (the only dataset of the space).
        num_classes: classifier outputs (1000).
        dropout: dropout before the classifier of built networks (default 0).
    Raises:
        ArchError: unknown variant.
    """

    name = "bnnas_imagenet"
    benchmark = None
    identity_value = IDENTITY
    input_size = INPUT_SIZE
    num_ops = len(OP_NAMES)
    identity_positions = IDENTITY_POSITIONS

    def __init__(self, variant: str | None = None, num_classes: int = 1000, dropout: float = 0.0):
        if variant not in (None, "", "imagenet"):
            raise ArchError(f"{self.name}: unknown variant {variant!r}; the space has only 'imagenet'")
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.stages = STAGES
        self.layers = layer_shapes(INPUT_SIZE)
        self._ops = tuple(range(len(OP_NAMES)))

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return len(self.layers)

    def choices(self, i: int):
        return (IDENTITY,) if i in IDENTITY_POSITIONS else self._ops

    def gene_error(self, arch: tuple, i: int) -> str:
        """Names the position (0-based), its value and the identity rule of the space."""
        a = arch[i]
        if i in IDENTITY_POSITIONS:
            return (f"{self.name}: position {i} of {arch!r} is {a}, but positions "
                    f"{list(IDENTITY_POSITIONS)} are always the identity (-1)")
        if a == IDENTITY:
            return (f"{self.name}: position {i} of {arch!r} is the identity (-1), which is only "
                    f"allowed at positions {list(IDENTITY_POSITIONS)}; allowed values here are 0..5")
        return f"{self.name}: position {i} of {arch!r} is {a}, allowed values are 0..5 ({', '.join(OP_NAMES)})"

    # -- keys -----------------------------------------------------------------
    def encode(self, arch) -> str:
        """Architecture -> key, e.g. ``"3,-1,0,4,0,-1,-1,0,4,-1,4,4,1,4,2,0,0,4,0,2,2"``."""
        return ",".join(str(a) for a in self.validate(arch))

    def decode(self, key) -> tuple:
        """Key -> architecture tuple.

        Genes are separated by commas and/or whitespace; one pair of
        surrounding ``[]`` or ``()`` is allowed (``"[3, -1, 0, ...]"``,
        ``"3 -1 0 ..."``).

        Raises:
            ArchError: unparsable key (the message quotes it) or an illegal
                architecture (see :meth:`validate`).
        """
        text = str(key).strip()
        if len(text) >= 2 and (text[0], text[-1]) in (("[", "]"), ("(", ")")):
            text = text[1:-1].strip()
        try:
            arch = tuple(int(t) for t in _SEP.split(text)) if text else ()
        except ValueError:
            raise ArchError(f"{self.name}: cannot parse architecture key {short_repr(key)}; expected "
                            f"{self.num_genes} comma-separated ints such as {self.example_key()!r}") from None
        if len(arch) != self.num_genes:
            raise ArchError(f"{self.name}: key {short_repr(key)} has {len(arch)} genes, expected {self.num_genes}")
        return self.validate(arch)

    @staticmethod
    def example_key() -> str:
        """The BN-NAS README architecture as a key."""
        return "3,-1,0,4,0,-1,-1,0,4,-1,4,4,1,4,2,0,0,4,0,2,2"

    # -- networks -------------------------------------------------------------
    def layer_shapes(self) -> list[tuple[int, int, int, int]]:
        return list(self.layers)

    def make_op(self, layer: int, value: int) -> nn.Module:
        inp, oup, stride, _ = self.layers[layer]
        return make_op(value, inp, oup, stride)

    def make_network(self, layers, num_classes: int) -> nn.Module:
        return BNNASImageNetNetwork(layers, num_classes=num_classes, dropout=self.dropout)

    # -- cost -----------------------------------------------------------------
    def reference_flops(self, arch) -> int:
        """FLOPs in upstream's convention (its ``op_flops_dict`` lookup table).

        Upstream's thop counts the classifier as ``(2 * in - 1) * out``
        multiplies + adds instead of ``in * out`` MACs, so this is
        ``flops(arch) + (1728 - 1) * num_classes``; it reproduces the logged
        473.549240M (README arch) and 468.807608M (SPOS arch) exactly. Use it
        only to compare with upstream numbers such as its 475M search limit.
        """
        return self.flops(arch) + (HEAD_CHANNELS - 1) * self.num_classes
