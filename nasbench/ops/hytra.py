"""Building blocks of the BossNet-T networks (HyTra search space of BossNAS).

Li et al., "BossNAS: Exploring Hybrid CNN-transformers with Block-wisely
Self-supervised Neural Architecture Search" (ICCV'21), section 4 and the
retraining code of changlin31/BossNAS (``retraining_hytra/boss_candidates``).
METHODS.md section 3. Written from the paper and from reading the reference;
the modules are named like the reference's so its released checkpoints load
with ``load_state_dict`` (checked on the reference's randomly initialised
networks: same keys, same shapes, same outputs).

* :class:`PEG`: the position-encoding generator, a depthwise 3x3 convolution
  (with bias) that replaces the spatial stride of the block's first 1x1
  projection. It is the only position information of the network: the
  reference's BoTNet-style attention has **no** relative or absolute position
  embedding (its ``rel_pos_emb`` argument is unused and its MAdds script says
  "no rel pos by default in BossNet"), so none is implemented here.
* :class:`ResConv`: ResNet bottleneck (1x1 -> PEG -> BN -> act -> 3x3 -> BN ->
  act -> 1x1 -> BN [-> SE] [-> drop path]) + shortcut, then act.
* :class:`ResAtt`: BoTNet-style bottleneck with multi-head self-attention
  (1x1 -> PEG -> BN -> act -> MHSA -> BN -> act -> 1x1 -> BN) + shortcut,
  then act. No SE and no drop path (as in the reference).
* Shortcuts are ``avg_down`` ones: identity when the shape is kept, else
  [2x2 average pool (stride 2, ceil mode, padding not counted) when the block
  has stride 2] -> 1x1 conv -> BN, no activation.

Cost convention of the family (:func:`count_hytra_macs`): multiply-accumulates
of every ``nn.Conv2d`` and ``nn.Linear`` (as :func:`nasbench.metrics.flops.count_macs`)
plus the two attention matrix products of every :class:`MHSA`
(``q^T k`` and ``v attn^T``: ``2 * N^2 * d`` for ``N`` tokens and ``d =
heads * dim_head`` channels). Not counted: BN, activations, softmax, the
``1/sqrt(d)`` scaling, SE pooling and gating, pooling, biases, residual adds.
"""
from __future__ import annotations

import torch.nn as nn

#: channels per attention head (the reference's ``dim_head``)
DIM_HEAD = 64
#: SE reduction ratio and minimum width of the reference's SE module (timm 0.3.2 ``SEModule``)
SE_REDUCTION = 16
SE_MIN_CHANNELS = 8


class PEG(nn.Module):
    """Position-encoding generator: depthwise 3x3 conv with bias, padding 1.

    ``[N, C, H, W]`` -> ``[N, C, ceil(H/s), ceil(W/s)]``. The output is the
    convolution alone (no residual), as in the reference. Module: ``conv``.
    """

    def __init__(self, dim: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, stride, 1, groups=dim, bias=True)

    def forward(self, x):
        return self.conv(x)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: mean pool -> 1x1 conv (bias) -> ReLU -> 1x1 conv (bias) -> sigmoid gate.

    Hidden width ``max(channels // 16, 8)``; the internal activation is ReLU
    whatever the block's activation is (timm 0.3.2's ``SEModule`` defaults,
    which the reference uses). Modules: ``fc1``, ``act``, ``fc2``, ``gate``.
    """

    def __init__(self, channels: int, reduction: int = SE_REDUCTION, min_channels: int = SE_MIN_CHANNELS):
        super().__init__()
        hidden = max(channels // reduction, min_channels)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        s = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * self.gate(s)


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` (training only).

    Kept branches are scaled by ``1 / (1 - p)``. No parameters.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def avg_down_shortcut(inp: int, oup: int, stride: int) -> nn.Module:
    """Shortcut of a block ``inp -> oup`` with ``stride`` (1 or 2).

    Identity when ``stride == 1 and inp == oup``; otherwise
    ``[AvgPool2d(2, 2, ceil_mode, count_include_pad=False) or Identity, conv1x1 (no bias), BN]``
    (indices 0, 1, 2 as in the reference, so checkpoint keys match).
    """
    if stride == 1 and inp == oup:
        return nn.Identity()
    pool = (nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride != 1 else nn.Identity())
    return nn.Sequential(pool, nn.Conv2d(inp, oup, 1, bias=False), nn.BatchNorm2d(oup))


class ResConv(nn.Module):
    """ResConv layer: bottleneck with a PEG after its first 1x1 conv.

    ``[N, inp, H, W]`` -> ``[N, 4 * planes, ceil(H/s), ceil(W/s)]``, ``s = stride``
    (carried by the PEG). Path: conv1 1x1 inp->planes, peg (stride s), bn1,
    act1, conv2 3x3 planes->planes (pad 1), bn2, act2, conv3 1x1
    planes->4*planes, bn3, [se], [drop_path]; plus the shortcut
    (:func:`avg_down_shortcut`, attribute ``downsample``); then act3. No conv
    but the PEG and SE ones has a bias.

    Args:
        act: activation class (``nn.SiLU`` for BossNet-T, ``nn.ReLU`` for T0 w/o SE), built inplace.
        se: add :class:`SqueezeExcite` on the ``4 * planes`` output.
        drop_path: stochastic-depth probability of the residual branch (0: no module).
    """

    expansion = 4

    def __init__(self, inp: int, planes: int, stride: int = 1, act=nn.ReLU, se: bool = False,
                 drop_path: float = 0.0):
        super().__init__()
        oup = planes * self.expansion
        self.downsample = avg_down_shortcut(inp, oup, stride)
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.peg = PEG(planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = act(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = act(inplace=True)
        self.conv3 = nn.Conv2d(planes, oup, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(oup)
        self.se = SqueezeExcite(oup) if se else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.act3 = act(inplace=True)

    def zero_init_last_bn(self):
        """Zero the last BN's scale, so the block starts as its shortcut."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x):
        shortcut = self.downsample(x)
        x = self.act1(self.bn1(self.peg(self.conv1(x))))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        if self.se is not None:
            x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        return self.act3(x + shortcut)


class MHSA(nn.Module):
    """All-to-all multi-head self-attention over the ``H * W`` positions (no position embedding).

    ``[N, dim, H, W]`` -> ``[N, heads * dim_head, H, W]``. One 1x1 conv
    (``to_qkv``, no bias) gives the queries, keys and values, laid out as
    ``[q heads | k heads | v heads]`` of ``dim_head`` channels each; logits
    ``q^T k / sqrt(dim_head)``, softmax over the keys, output ``v attn^T``.
    """

    def __init__(self, dim: int, heads: int, dim_head: int = DIM_HEAD):
        super().__init__()
        self.heads, self.dim_head = int(heads), int(dim_head)
        self.scale = self.dim_head ** -0.5
        self.to_qkv = nn.Conv2d(dim, 3 * self.heads * self.dim_head, 1, bias=False)

    def forward(self, x):
        b, _, h, w = x.shape
        q, k, v = self.to_qkv(x).reshape(b, 3 * self.heads, self.dim_head, h * w).chunk(3, dim=1)
        attn = (q.transpose(-2, -1) @ k * self.scale).softmax(dim=-1)  # [b, heads, query, key]
        return (v @ attn.transpose(-2, -1)).reshape(b, self.heads * self.dim_head, h, w)

    def forward_macs(self, inputs, output) -> int:
        """The attention products' MACs of one forward (:func:`~nasbench.metrics.flops.count_macs` hook)."""
        return self.matmul_macs(output.shape[-2], output.shape[-1])

    def matmul_macs(self, h: int, w: int) -> int:
        """MACs of the two attention products for one ``h x w`` input: ``2 * (h*w)^2 * heads * dim_head``."""
        n = h * w
        return 2 * n * n * self.heads * self.dim_head


class ResAtt(nn.Module):
    """ResAtt layer: BoTNet-style bottleneck with :class:`MHSA` in place of the 3x3 conv.

    ``[N, inp, H, W]`` -> ``[N, oup, ceil(H/s), ceil(W/s)]``. Modules (reference
    layout): ``shortcut`` (:func:`avg_down_shortcut`); ``proj`` = [conv1x1
    inp->heads*64 (no bias), PEG (stride s), BN]; ``net`` = [act, MHSA, BN,
    act, conv1x1 heads*64->oup (no bias), BN]; ``activation`` after the sum.
    The attention runs after the PEG, i.e. on the strided map.

    Args:
        heads: attention heads of ``dim_head`` (64) channels; the bottleneck width is ``heads * 64``.
        act: activation class, built inplace.
    """

    def __init__(self, inp: int, oup: int, heads: int, stride: int = 1, act=nn.ReLU, dim_head: int = DIM_HEAD):
        super().__init__()
        width = heads * dim_head
        self.shortcut = avg_down_shortcut(inp, oup, stride)
        self.proj = nn.Sequential(nn.Conv2d(inp, width, 1, bias=False), PEG(width, stride), nn.BatchNorm2d(width))
        self.net = nn.Sequential(act(inplace=True), MHSA(width, heads, dim_head), nn.BatchNorm2d(width),
                                 act(inplace=True), nn.Conv2d(width, oup, 1, bias=False), nn.BatchNorm2d(oup))
        self.activation = act(inplace=True)

    def zero_init_last_bn(self):
        """Zero the last BN's scale, so the block starts as its shortcut."""
        nn.init.zeros_(self.net[-1].weight)

    def forward(self, x):
        return self.activation(self.net(self.proj(x)) + self.shortcut(x))


def count_hytra_macs(model: nn.Module, input_size=(3, 224, 224)) -> int:
    """MACs of ``model`` for one ``input_size`` (C, H, W) input: conv + linear + attention products.

    :func:`nasbench.metrics.flops.count_macs` plus :meth:`MHSA.matmul_macs` of
    every attention module, measured in the same forward pass (works on the
    ``meta`` device).
    """
    from ..metrics.flops import count_macs
    return count_macs(model, tuple(input_size))  # MHSA counts its products through forward_macs


def init_weights(model: nn.Module):
    """The reference's initialisation of a BossNet.

    Every conv weight Kaiming-normal (fan_out, ReLU gain), every BN weight 1
    and bias 0, then the last BN of every ResConv / ResAtt zeroed; conv biases
    (PEG, SE) and the classifier keep PyTorch's defaults.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, (ResConv, ResAtt)):
            m.zero_init_last_bn()


__all__ = ["PEG", "SqueezeExcite", "DropPath", "avg_down_shortcut", "ResConv", "MHSA", "ResAtt",
           "count_hytra_macs", "init_weights", "DIM_HEAD"]
