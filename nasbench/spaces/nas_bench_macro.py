"""NAS-Bench-Macro operator search space (CIFAR-10, 8 layers x 3 ops).

Source: xiusu/NAS-Bench-Macro ``train/model.py`` (``Network``, ``Identity``,
``InvertedResidual``) and ``train/utils.py`` (``get_real_arch``,
``count_FLOPs``, ``count_parameters_in_MB``); paper "Prioritized Architecture
Sampling with Monte-Carlo Tree Search" (CVPR'21). METHODS.md section 6.

Network for a ``[N, 3, 32, 32]`` input:

* stem: conv3x3 3->32 (stride 1, pad 1, no bias) + BN + ReLU, 32x32;
* 8 searchable layers in stages ``[2, 3, 3]``; the first layer of every stage
  has stride 2 and doubles the channels (32->64, 64->128, 128->256; feature
  maps 16x16, 8x8, 4x4), the others keep both;
* head: conv1x1 256->1280 (no bias) + BN + ReLU + global average pool,
  then ``Linear(1280, num_classes)``.

Operators (one gene per layer, value = the benchmark's key digit):

* ``0`` ``id``: identity; in the first layer of a stage it is a conv1x1
  (stride 2, no bias) + BN downsample, otherwise it has no layer at all;
* ``1`` ``ir_3x3_t3`` (MB3_K3): inverted residual, expansion 3, kernel 3;
* ``2`` ``ir_5x5_t6`` (MB6_K5): inverted residual, expansion 6, kernel 5.

An inverted residual is pw conv1x1 inp->hidden (``hidden = round(inp * t)``)
+ BN + ReLU, depthwise kxk (stride s, pad k//2) + BN + ReLU, pw-linear conv1x1
hidden->oup + BN, with an identity shortcut when ``inp == oup`` and stride 1.

Keys are 8-digit strings such as ``"22212220"``. Identities inside a stage
(except at its first layer) are no-ops, so upstream trained only the
*canonical* architecture, with those identities moved to the stage end
(``get_real_arch``); all 6,561 keys are in the benchmark but only 3,969
results are distinct (:meth:`NASBenchMacroSpace.canonical`).

Cost convention (reproduces the benchmark's ``flops`` and ``params`` exactly
for all 6,561 keys, ``tests/test_nas_bench_macro.py``): FLOPs are
multiply-accumulates (MACs) of conv and linear layers for one 32x32 image (BN,
ReLU, pooling, bias and shortcut additions not counted); params count every
parameter, BN affine ones and the classifier bias included.
"""
from __future__ import annotations

import numpy as np
import torch.nn as nn

from ..errors import ArchError
from ..ops.mbconv import MBConv
from ..registry import SPACES
from .base import short_repr
from .op_choice import OpChoiceSpace, conv_out_size

#: Operator names, indexed by gene value (upstream ``candidate_OP``).
OP_NAMES = ("id", "ir_3x3_t3", "ir_5x5_t6")
#: ``(expansion t, kernel k)`` of each operator; None for the identity.
OP_SPECS = (None, (3, 3), (6, 5))
STAGES = (2, 3, 3)
INIT_CHANNELS = 32
HEAD_CHANNELS = 1280
INPUT_SIZE = 32


class Identity(nn.Module):
    """Identity op: conv1x1 (stride ``s``, no bias) + BN when the shape changes, else nothing.

    ``[N, inp, H, W]`` -> ``[N, oup, H/s, W/s]``.
    """

    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        self.downsample = (nn.Sequential(nn.Conv2d(inp, oup, 1, stride, bias=False), nn.BatchNorm2d(oup))
                           if stride != 1 or inp != oup else None)

    @property
    def last_bn(self):
        """The downsample BN, or None when the op has no layer."""
        return None if self.downsample is None else self.downsample[1]

    def forward(self, x):
        return x if self.downsample is None else self.downsample(x)


def make_op(op: int, inp: int, oup: int, stride: int) -> nn.Module:
    """The module of operator ``op`` (0, 1 or 2) for a layer ``inp -> oup`` with ``stride``."""
    if OP_SPECS[op] is None:
        return Identity(inp, oup, stride)
    t, k = OP_SPECS[op]
    return MBConv(inp, oup, stride, t, k, act=nn.ReLU)


def layer_shapes() -> list[tuple[int, int, int, int]]:
    """Per searchable layer: ``(inp, oup, stride, input H = W)`` for a 32x32 image."""
    out, ch, size = [], INIT_CHANNELS, INPUT_SIZE
    for n in STAGES:
        for i in range(n):
            if i == 0:
                out.append((ch, 2 * ch, 2, size))
                ch, size = 2 * ch, conv_out_size(size, 1, 2, 0)
            else:
                out.append((ch, ch, 1, size))
    return out


class NASBenchMacroNetwork(nn.Module):
    """Standalone NAS-Bench-Macro network (upstream ``Network``), or the supernet's skeleton.

    ``[N, 3, 32, 32]`` -> logits ``[N, num_classes]``. Module names follow
    upstream (``stem``, ``features.<layer>``, ``out``, ``classifier``).

    Args:
        arch: 8 gene values; ignored when ``layers`` is given.
        num_classes: classifier outputs.
        layers: the 8 searchable layer modules (e.g. the supernet's choice blocks).
    """

    def __init__(self, arch=None, num_classes: int = 10, layers=None):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, INIT_CHANNELS, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(INIT_CHANNELS), nn.ReLU(inplace=True))
        shapes = layer_shapes()
        if layers is None:
            layers = [make_op(op, inp, oup, s) for op, (inp, oup, s, _) in zip(arch, shapes)]
        self.features = nn.Sequential(*layers)
        ch = shapes[-1][1]
        self.out = nn.Sequential(nn.Conv2d(ch, HEAD_CHANNELS, 1, bias=False), nn.BatchNorm2d(HEAD_CHANNELS),
                                 nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x):
        return self.classifier(self.out(self.features(self.stem(x))).flatten(1))


@SPACES.register("nas_bench_macro")
class NASBenchMacroSpace(OpChoiceSpace):
    """NAS-Bench-Macro: 8 genes, each in ``(0, 1, 2)`` = (identity, MB3_K3, MB6_K5).

    Architectures are tuples of 8 ints; keys are the benchmark's 8-digit
    strings (``encode``/``decode``). ``flops``/``params`` come from the
    per-(layer, op) tables counted once from the candidate modules
    (:class:`OpChoiceSpace`) and equal the benchmark's values (FLOPs = MACs at
    32x32, see the module docstring).

    Args:
        variant: None or ``"cifar10"`` (the only dataset of the benchmark).
        num_classes: classifier outputs (10 for the benchmark).
    Raises:
        ArchError: unknown variant.
    """

    name = "nas_bench_macro"
    benchmark = "nas_bench_macro"
    identity_value = 0
    input_size = INPUT_SIZE
    num_ops = len(OP_NAMES)

    def __init__(self, variant: str | None = None, num_classes: int = 10):
        if variant not in (None, "", "cifar10"):
            raise ArchError(f"nas_bench_macro: unknown variant {variant!r}; the benchmark has only 'cifar10'")
        self.num_classes = int(num_classes)
        self.stages = STAGES
        self.layers = layer_shapes()
        self._choices = tuple(range(len(OP_NAMES)))

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return len(self.layers)

    def choices(self, i: int):
        return self._choices

    # -- keys -----------------------------------------------------------------
    def encode(self, arch) -> str:
        """Architecture -> 8-digit key, e.g. ``(2, 2, 2, 1, 2, 2, 2, 0)`` -> ``"22212220"``."""
        return "".join(str(a) for a in self.validate(arch))

    def decode(self, key) -> tuple:
        """8-digit key -> architecture tuple.

        Raises:
            ArchError: wrong length or a character that is not 0, 1 or 2 (the
                message names the key and the 1-based position).
        """
        key = str(key)
        if len(key) != self.num_genes:
            raise ArchError(f"{self.name}: key {short_repr(key)} has {len(key)} characters, "
                            f"expected {self.num_genes} digits, each in 0..2")
        for i, ch in enumerate(key):
            if ch not in "012":
                raise ArchError(f"{self.name}: key {short_repr(key)}: position {i + 1} is {ch!r}, allowed values are 0..2")
        return tuple(int(ch) for ch in key)

    def canonical(self, arch) -> tuple:
        """The architecture upstream trained for ``arch`` (``get_real_arch``).

        Within each stage, identities after the first layer are moved to the
        stage end (the order of the other ops is kept); the first layer of a
        stage is never moved. ``arch`` and its canonical form compute the same
        function with the same parameters, flops and benchmark record.
        """
        arch = self.validate(arch)
        out, pos = [], 0
        for n in self.stages:
            stage = arch[pos:pos + n]
            rest = [a for a in stage[1:] if a != 0]
            out += [stage[0], *rest] + [0] * (n - 1 - len(rest))
            pos += n
        return tuple(out)

    def is_canonical(self, arch) -> bool:
        arch = self.validate(arch)
        return self.canonical(arch) == arch

    # -- networks and cost ----------------------------------------------------
    # build(arch) (OpChoiceSpace) gives the network of ``arch`` as given, not
    # canonicalised: the same function as build(canonical(arch)), only the
    # layer indices of the no-op identities differ.
    def layer_shapes(self) -> list[tuple[int, int, int, int]]:
        return list(self.layers)

    def make_op(self, layer: int, value: int) -> nn.Module:
        inp, oup, stride, _ = self.layers[layer]
        return make_op(value, inp, oup, stride)

    def make_network(self, layers, num_classes: int) -> nn.Module:
        return NASBenchMacroNetwork(num_classes=num_classes, layers=layers)

    def layer_flops_table(self) -> np.ndarray:
        """Per-(layer, op) MACs, int64 array ``[8, 3]`` (column = gene value).

        ``flops(arch) == base_flops + sum(table[l, arch[l]])``; the identity
        column is 0 except at the stride-2 layers 0, 2 and 5 (its downsample
        conv). Built from the counted lookup table (:meth:`count_flops_lut`).
        """
        return self._layer_table(self.flops_lut[1])

    def layer_params_table(self) -> np.ndarray:
        """Per-(layer, op) parameters, int64 array ``[8, 3]`` (see :meth:`layer_flops_table`)."""
        return self._layer_table(self.params_lut[1])

    def _layer_table(self, table) -> np.ndarray:
        return np.array([[row[v] for v in self._choices] for row in table], dtype=np.int64)
