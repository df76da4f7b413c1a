"""Dynamic-width operators: conv, BatchNorm and linear layers on a channel window.

Each operator owns the weights of the *widest* layer and runs on any contiguous
window ``[start, end)`` of its input and output channels. A left-aligned window
``[0, c)`` gives the unilateral (AutoSlim) subnet, a right-aligned window
``[C - c, C)`` gives BCNet's right path (BCNet, arXiv 2105.10533, Sec. 3.1).
Windows are plain ints set by the owning supernet before a forward pass, so
slicing costs one view per weight.

Each operator names the *dimension* (an index into the supernet's list of
searchable channel dimensions) of its input and output; ``None`` means a fixed
size (image channels, classes).
"""
from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class DynamicConv2d(nn.Conv2d):
    """Conv2d that runs on the channel windows ``in_win`` and ``out_win``.

    Args:
        in_channels, out_channels: full (maximum) channel counts.
        in_dim, out_dim: searchable dimension ids, or ``None`` for fixed sizes.
        depthwise: groups equal channels; the input window follows ``out_win``.
    Input ``[N, in_win size, H, W]`` -> output ``[N, out_win size, H', W']``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 bias=False, depthwise=False, in_dim=None, out_dim=None):
        groups = out_channels if depthwise else 1
        super().__init__(in_channels, out_channels, kernel_size, stride, padding,
                         groups=groups, bias=bias)
        self.depthwise = depthwise
        self.in_dim, self.out_dim = in_dim, out_dim
        self.in_win = (0, in_channels)
        self.out_win = (0, out_channels)

    def forward(self, x):
        os_, oe = self.out_win
        if self.depthwise:
            weight, groups = self.weight[os_:oe], oe - os_
        else:
            is_, ie = self.in_win
            weight, groups = self.weight[os_:oe, is_:ie], 1
        bias = self.bias[os_:oe] if self.bias is not None else None
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)


class DynamicLinear(nn.Linear):
    """Linear layer on the input window ``in_win`` (the classifier's width).

    Input ``[N, in_win size]`` -> output ``[N, out_win size]``.
    """

    def __init__(self, in_features, out_features, bias=True, in_dim=None, out_dim=None):
        super().__init__(in_features, out_features, bias=bias)
        self.in_dim, self.out_dim = in_dim, out_dim
        self.in_win = (0, in_features)
        self.out_win = (0, out_features)

    def forward(self, x):
        (is_, ie), (os_, oe) = self.in_win, self.out_win
        bias = self.bias[os_:oe] if self.bias is not None else None
        return F.linear(x, self.weight[os_:oe, is_:ie], bias)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d on the channel window ``out_win`` of its full statistics.

    The running statistics of the window are updated in place, so after
    :func:`nasbench.evaluators.accuracy.recalibrate_bn` they describe exactly
    the active subnet (BN recalibration, BCNet Sec. 3.3). With ``momentum=None``
    the running statistics are a cumulative average.

    With ``sync = True`` and an initialised process group of more than one
    process, batch statistics are all-reduced across processes (a differentiable
    SyncBN on CPU/gloo and CUDA/NCCL alike), so a DDP run normalises exactly like
    one process that sees the whole global batch.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dim=None):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.in_dim = self.out_dim = dim
        self.out_win = (0, num_features)
        self.sync = False

    @property
    def in_win(self):
        return self.out_win

    @in_win.setter
    def in_win(self, win):
        self.out_win = win

    def _factor(self):
        if not (self.training and self.track_running_stats):
            return 0.0
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def forward(self, x):
        s, e = self.out_win
        weight, bias = self.weight[s:e], self.bias[s:e]
        rm, rv = self.running_mean[s:e], self.running_var[s:e]
        factor = self._factor()
        if self.training and self.sync and dist.is_available() and dist.is_initialized() \
                and dist.get_world_size() > 1:
            return _sync_batch_norm(x, rm, rv, weight, bias, factor, self.eps)
        return F.batch_norm(x, rm, rv, weight, bias, self.training or not self.track_running_stats,
                            factor, self.eps)


def _sync_batch_norm(x, running_mean, running_var, weight, bias, factor, eps):
    """Training-mode BN with statistics summed over all processes (differentiable).

    ``x``: ``[N, C, H, W]``; ``running_*``: views ``[C]`` updated in place.
    """
    from torch.distributed.nn.functional import all_reduce  # differentiable (autograd) all-reduce

    warnings.filterwarnings("ignore", message=".*distributed.nn.functional.all_reduce is deprecated.*")
    c = x.shape[1]
    xf = x if x.dtype == torch.float64 else x.float()
    count = torch.tensor([xf.numel() / c], dtype=xf.dtype, device=x.device)
    packed = all_reduce(torch.cat([xf.sum((0, 2, 3)), count]))
    n = packed[-1]
    mean = packed[:c] / n
    # two passes (mean, then centred squares): E[x^2] - E[x]^2 cancels catastrophically
    # in float32 when |mean| >> std, e.g. after a ReLU
    centred = xf - mean[None, :, None, None]
    var = all_reduce((centred * centred).sum((0, 2, 3))) / n
    with torch.no_grad():
        running_mean.mul_(1 - factor).add_(factor * mean.detach())
        running_var.mul_(1 - factor).add_(factor * var.detach() * n / max(float(n) - 1, 1.0))
    y = centred * torch.rsqrt(var + eps)[None, :, None, None]
    return (y * weight[None, :, None, None] + bias[None, :, None, None]).to(x.dtype)


DYNAMIC_TYPES = (DynamicConv2d, DynamicLinear, DynamicBatchNorm2d)


def dynamic_modules(model: nn.Module):
    """All dynamic-width modules of ``model`` in registration order."""
    return [m for m in model.modules() if isinstance(m, DYNAMIC_TYPES)]


def set_windows(modules, windows):
    """Set every module's channel windows from ``windows[dim] = (start, end)``.

    Fixed-size sides (dim ``None``) keep their full range.
    """
    for m in modules:
        if m.in_dim is not None:
            m.in_win = windows[m.in_dim]
        if not isinstance(m, DynamicBatchNorm2d) and m.out_dim is not None:
            m.out_win = windows[m.out_dim]
