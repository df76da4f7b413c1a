"""Operations and macro skeleton of NAS-Bench-201 networks, shared by the DARTS supernet
(:class:`~nasbench.supernets.nas_bench_201.NB201SearchNetwork`) and the standalone network
(:class:`~nasbench.spaces.nas_bench_201.NB201Network`).

Dong & Yang, "NAS-Bench-201" (ICLR 2020, arXiv 2001.00326), section 2.1; the
reference code ``D-X-Y/AutoDL-Projects`` (``xautodl/models/cell_operations.py``:
``ReLUConvBN``, ``Zero``, ``Identity``, ``POOLING``, ``ResNetBasicblock``;
``xautodl/models/cell_infers/tiny_network.py``: ``TinyNetwork``), written anew.

Every cell operation keeps the shape ``[N, C, H, W]`` (inside NB201 cells all
operations have stride 1 and ``C_in == C_out``, also on the edges from node 0):

* ``none``: zeros (the reference keeps a ``Zero`` module on the edge, so a node
  whose incoming edges are all ``none`` is a zero tensor, not an error);
* ``skip_connect``: identity;
* ``nor_conv_1x1`` / ``nor_conv_3x3``: ReLU -> conv ``k x k`` (no bias, padding ``k // 2``) -> BN;
* ``avg_pool_3x3``: 3x3 average pooling, stride 1, padding 1, padding excluded from the mean.
"""
from __future__ import annotations

import torch.nn as nn

__all__ = ["ReLUConvBN", "Zero", "ResBlock", "make_op", "macro_layers", "InferCell", "NB201Network"]


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv ``k x k`` (no bias) -> BN: ``[N, C_in, H, W] -> [N, C_out, H/s, W/s]``.

    ``affine=False`` gives the BN of DARTS search cells (no learnable scale/shift).
    """

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, affine: bool = True):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(C_in, C_out, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(C_out, affine=affine))


class Zero(nn.Module):
    """The ``none`` operation: zeros of the input's shape ``[N, C, H, W]``."""

    def forward(self, x):
        return x.mul(0.0)


def make_op(name: str, C: int, affine: bool = True) -> nn.Module:
    """The NAS-Bench-201 operation ``name`` on ``C`` channels, stride 1 (module doc).

    Raises:
        ValueError: an unknown operation name.
    """
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(C, C, 1, 1, affine=affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(C, C, 3, 1, affine=affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 operation {name!r}")


class ResBlock(nn.Module):
    """NB201's residual reduction block (ResNet basic block, stride 2):
    ``[N, C_in, H, W] -> [N, C_out, H/2, W/2]``.

    ``ReLU-conv3x3(s2)-BN -> ReLU-conv3x3-BN`` plus the shortcut ``avg-pool 2x2 -> conv 1x1``
    (no bias, no BN), always with affine BN (reference ``ResNetBasicblock``).
    """

    def __init__(self, C_in: int, C_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, affine=True)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, affine=True)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def macro_layers(C: int, N: int, make_cell) -> tuple[nn.Module, nn.ModuleList, nn.Module, int]:
    """The NB201 macro skeleton around ``make_cell(channels) -> cell module``.

    Returns ``(stem, layers, lastact, C_last)``: stem = conv 3x3 ``3 -> C`` (no bias) + BN;
    layers = ``N`` cells at ``C``, :class:`ResBlock` ``C -> 2C``, ``N`` cells at ``2C``,
    :class:`ResBlock` ``2C -> 4C``, ``N`` cells at ``4C``; lastact = BN + ReLU on ``C_last = 4C``.
    The classifier (global average pooling, linear ``4C -> classes``) is the caller's.

    Raises:
        ValueError: non-positive ``C`` or ``N``.
    """
    if C <= 0 or N <= 0:
        raise ValueError(f"C and N must be positive, got {C}, {N}")
    stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
    layers, c = [], C
    for stage in range(3):
        if stage:
            layers.append(ResBlock(c, 2 * c))
            c *= 2
        layers.extend(make_cell(c) for _ in range(N))
    return stem, nn.ModuleList(layers), nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False)), c


class InferCell(nn.Module):
    """A discrete NB201 cell: ``[N, C, H, W] -> [N, C, H, W]``.

    Args:
        nodes: per node ``i = 1, 2, 3`` a sequence of ``(op_name, j)`` edges ``i <- j``
            (the structure of an NB201 arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``).
        C: channels.

    Node 0 is the cell input; node ``i`` is the sum of its edges' operations applied to
    node ``j``; the output is the last node. ``none`` edges keep a :class:`Zero` module (as
    the reference), so they cost nothing and the node is a zero tensor if all its edges are ``none``.

    Raises:
        ValueError: an unknown operation or an edge from a node that is not earlier.
    """

    def __init__(self, nodes, C: int, affine: bool = True):
        super().__init__()
        self.inputs, ops = [], []
        for i, node in enumerate(nodes, start=1):
            ins = []
            for op, j in node:
                if not 0 <= int(j) < i:
                    raise ValueError(f"edge {op}~{j} into node {i} must come from a node 0..{i - 1}")
                ins.append(int(j))
                ops.append(make_op(op, C, affine=affine))
            self.inputs.append(ins)
        self.ops = nn.ModuleList(ops)

    def forward(self, x):
        states, e = [x], 0
        for ins in self.inputs:
            out = 0
            for j in ins:
                out = out + self.ops[e](states[j])
                e += 1
            states.append(out if ins else x.mul(0.0))
        return states[-1]


class NB201Network(nn.Module):
    """The standalone NAS-Bench-201 network of one cell (reference ``TinyNetwork``):
    ``[N, 3, H, W]`` (``H, W`` divisible by 4) -> logits ``[N, num_classes]``.

    :func:`macro_layers` with the same :class:`InferCell` (affine BN) in all ``3 N`` cell
    positions, then global average pooling and a linear classifier ``4C -> num_classes``
    (with bias). NAS-Bench-201 trains it with ``C = 16, N = 5``.
    """

    def __init__(self, nodes, C: int = 16, N: int = 5, num_classes: int = 10):
        super().__init__()
        self.stem, self.cells, self.lastact, c = macro_layers(int(C), int(N), lambda ch: InferCell(nodes, ch))
        self.classifier = nn.Linear(c, int(num_classes))

    def forward(self, x):
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x)
        x = self.lastact(x).mean(dim=(2, 3))
        return self.classifier(x)
