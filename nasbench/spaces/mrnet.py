"""NAS-Bench-MR network: the multi-resolution (HRNet-like) ``MultiResolutionNet``.

Source: NCP / NAS-Bench-MR, Ding et al., "Learning Versatile Neural Architectures
by Propagating Network Codes", ICLR 2022 (arXiv 2103.13253); reference
implementation ``dingmyu/NCP`` ``models/supernet.py`` (re-written here, not
copied). See METHODS.md section 5.2.

Structure (``setting`` = :meth:`NASBenchMRSpace.to_setting` output, i.e.
``{"input_channel": [in0, in1], "network_setting": [[b, [c..], [w..]], ...],
"last_channel": last}``; a 27-int code or code string is also accepted):

* stem: ConvBNReLU(3 -> in0, 3x3, s2), ConvBNReLU(in0 -> in1, 3x3, s2)  (1/4 res.)
* per setting entry: a :class:`FuseModule` (from the previous entry's branches
  to this entry's, fusing only neighbouring branches) then a
  :class:`ParallelModule` (branch i, at 1/(4*2^i) resolution, is ``c_i``
  BasicBlocks of ``w_i`` channels).
* head: all branches are resized (bilinear) to the highest resolution (``seg``)
  or to the lowest one (``cls``/``video``), concatenated, 1x1 ConvBNReLU ->
  ``last``; global average pooling for ``cls``/``video``; 1x1 conv classifier
  (with bias) -> ``num_classes``.

Fuse module (the reference's defaults: ``only_fuse_neighbor=True``,
``directly_downsample=True``): output branch ``i`` (for ``i`` < number of input
branches) sums, over input branches ``j`` with ``|i-j| <= 1``:
``j == i``: ConvBNReLU 3x3 (always, even with equal widths); ``j > i``:
ConvBNReLU 1x1 then nearest upsampling x 2^(j-i); ``j < i``: ConvBNReLU 3x3 with stride
``2^(i-j)``; the sum goes through a ReLU. Every new branch ``i`` (when the
number of branches grows) is ConvBNReLU 3x3 s2 of the fused branch ``i-1``.
All convs are bias-free except the classifier.

Parameter convention of the benchmark's ``params`` column (measured, see
``tests/test_mrnet.py``): the column is the same for every shipped setting and
equals ``sum(p.numel())`` of this network with the ``fcn`` head and
**50 classes** (:data:`PARAMS_NUM_CLASSES`) whatever the setting's task/classes:
conv weights + BN affine weight/bias + classifier weight/bias (BN running
statistics are buffers and are not counted), i.e. thop's count. Use
``count_params(setting)`` (defaults to that convention).

FLOPs convention of the ``flops`` column (G, measured the same way; also
identical across settings): thop-style MACs of the ``cls`` network with 50
classes on one 1x3x128x128 input = conv MACs (output elements x in/groups x
k x k) + 2 x BN output elements + classifier bias (one per output); ReLU,
resizing and pooling count 0. Use ``count_flops(setting)``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: task of each shipped NAS-Bench-MR setting
SETTING_TASK = {"seg": "seg", "seg-4x": "seg", "cls-10c": "cls", "cls-50-100": "cls",
                "cls-10-1000": "cls", "cls-50-1000": "cls", "video": "video", "video-p": "video"}
#: number of classes of each setting's task (ImageNet subsets: cls-<classes>-<images per class>,
#: cls-10c = 10 classes; Cityscapes 19; HMDB51 51). Not what the ``params`` column uses.
SETTING_NUM_CLASSES = {"seg": 19, "seg-4x": 19, "cls-10c": 10, "cls-50-100": 50,
                       "cls-10-1000": 10, "cls-50-1000": 50, "video": 51, "video-p": 51}
#: classifier width behind the benchmark's ``params`` column (all settings)
PARAMS_NUM_CLASSES = 50

TASKS = ("seg", "cls", "video")


class ConvBNReLU(nn.Sequential):
    """Conv(k, stride, no bias) -> BN -> optional ReLU."""

    def __init__(self, cin, cout, kernel_size=3, stride=1, relu=True):
        layers = [nn.Conv2d(cin, cout, kernel_size, stride, (kernel_size - 1) // 2, bias=False),
                  nn.BatchNorm2d(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs); 1x1 projection shortcut when the shape changes."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ParallelModule(nn.Module):
    """Branch i: ``convs[i]`` BasicBlocks of ``channels[i]`` channels, applied independently."""

    def __init__(self, convs, channels):
        super().__init__()
        if len(convs) != len(channels):
            raise ValueError(f"ParallelModule: {len(convs)} conv counts but {len(channels)} widths")
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(w, w) for _ in range(int(n))]) for n, w in zip(convs, channels))

    def forward(self, xs):
        return [branch(x) for branch, x in zip(self.branches, xs)]


class FuseModule(nn.Module):
    """Transition/fusion from ``len(in_channels)`` to ``len(out_channels)`` branches (neighbours only)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        nin, nout = len(in_channels), len(out_channels)
        if nout < nin:
            raise ValueError(f"FuseModule: branches cannot decrease ({nin} -> {nout})")
        self.nin, self.nout = nin, nout
        self.fuse = nn.ModuleList()
        for i in range(nin):  # fused outputs (i < nin; nout == nin or nout > nin alike)
            row = nn.ModuleDict()
            for j in range(max(0, i - 1), min(nin, i + 2)):
                if j == i:
                    op = ConvBNReLU(in_channels[j], out_channels[i], 3, 1)
                elif j > i:  # lower resolution -> 1x1 then upsample (done in forward)
                    op = ConvBNReLU(in_channels[j], out_channels[i], 1, 1)
                else:  # higher resolution -> one strided 3x3
                    op = ConvBNReLU(in_channels[j], out_channels[i], 3, 2 ** (i - j))
                row[str(j)] = op
            self.fuse.append(row)
        # new branches: 3x3 s2 from the previous (fused / new) branch
        self.new = nn.ModuleList(ConvBNReLU(out_channels[i - 1], out_channels[i], 3, 2) for i in range(nin, nout))

    def forward(self, xs):
        out = []
        for i, row in enumerate(self.fuse):
            size = xs[i].shape[-2:]
            y = None
            for j, op in row.items():
                z = op(xs[int(j)])
                if int(j) > i:  # lower resolution: nearest upsampling by 2^(j-i), as the reference
                    z = F.interpolate(z, scale_factor=2 ** (int(j) - i), mode="nearest")
                if z.shape[-2:] != size:  # odd input sizes: bilinear resize to branch i
                    z = F.interpolate(z, size=size, mode="bilinear", align_corners=False)
                y = z if y is None else y + z
            out.append(F.relu(y))
        for op in self.new:
            out.append(op(out[-1]))
        return out


def _as_setting(setting):
    if not isinstance(setting, dict):
        raise TypeError("MultiResolutionNet takes a network setting dict; convert a NAS-Bench-MR code with "
                        "NASBenchMRSpace().to_setting(code)")
    return setting


class MultiResolutionNet(nn.Module):
    """NAS-Bench-MR network.

    Args:
        setting: ``{"input_channel", "network_setting", "last_channel"}`` dict (a 27-int
            code converts with :meth:`~nasbench.spaces.nas_bench_mr.NASBenchMRSpace.to_setting`).
        task: ``'seg'`` (dense logits at 1/4 resolution), ``'cls'`` or ``'video'``
            (GAP logits ``(N, num_classes)``; video clips ``(N, C, T, H, W)`` are
            run frame-wise and the logits averaged over time).
        num_classes: classifier outputs.
        head: ``'fcn'`` (1x1 ConvBNReLU transform, the reference default) or
            ``'block'`` (a BasicBlock transform).
    """

    def __init__(self, setting, task: str = "cls", num_classes: int = 1000, head: str = "fcn"):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"MultiResolutionNet: task {task!r} not in {TASKS}")
        s = _as_setting(setting)
        in0, in1 = (int(c) for c in s["input_channel"])
        entries = [[int(e[0]), [int(c) for c in e[1]], [int(w) for w in e[2]]] for e in s["network_setting"]]
        last = int(s["last_channel"])
        self.task = task
        self.stem = nn.Sequential(ConvBNReLU(3, in0, 3, 2), ConvBNReLU(in0, in1, 3, 2))
        stages, prev = [], [in1]
        for b, convs, chans in entries:
            if len(convs) != b or len(chans) != b:
                raise ValueError(f"MultiResolutionNet: entry {[b, convs, chans]} is inconsistent")
            stages += [FuseModule(prev, chans), ParallelModule(convs, chans)]
            prev = chans
        self.features = nn.Sequential(*stages)
        cat = sum(prev)
        if head == "fcn":
            self.transform = ConvBNReLU(cat, last, 1, 1)
        elif head == "block":
            self.transform = BasicBlock(cat, last)
        else:
            raise ValueError(f"MultiResolutionNet: head {head!r} not in ('fcn', 'block')")
        self.classifier = nn.Conv2d(last, num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.weight.device.type != "meta":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _forward2d(self, x):
        xs = self.features([self.stem(x)])
        size = xs[0].shape[-2:] if self.task == "seg" else xs[-1].shape[-2:]
        x = torch.cat([F.interpolate(t, size=size, mode="bilinear", align_corners=False)
                       if t.shape[-2:] != size else t for t in xs], dim=1)
        x = self.transform(x)
        if self.task != "seg":
            x = F.adaptive_avg_pool2d(x, 1)
        x = self.classifier(x)
        return x if self.task == "seg" else x.flatten(1)

    def forward(self, x):
        if self.task == "video" and x.dim() == 5:  # (N, C, T, H, W): frame-wise, mean over T
            n, c, t, h, w = x.shape
            y = self._forward2d(x.transpose(1, 2).reshape(n * t, c, h, w))
            return y.view(n, t, -1).mean(1)
        return self._forward2d(x)


def count_params(setting, task: str = "cls", num_classes: int = PARAMS_NUM_CLASSES, head: str = "fcn",
                 bn: bool = True) -> int:
    """Parameter count built on the meta device (no memory); ``bn=False`` leaves out BN affine params."""
    with torch.device("meta"):
        net = MultiResolutionNet(setting, task=task, num_classes=num_classes, head=head)
    n = 0
    for m in net.modules():
        if not bn and isinstance(m, nn.BatchNorm2d):
            continue
        n += sum(p.numel() for p in m.parameters(recurse=False))
    return n


def count_flops(setting, task: str = "cls", num_classes: int = PARAMS_NUM_CLASSES, input_size=128,
                head: str = "fcn") -> int:
    """thop-style MACs for one ``input_size`` image (int or (H, W)), run on the meta device.

    The default reproduces the benchmark's ``flops`` column (x 1e-9)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    with torch.device("meta"):
        net = MultiResolutionNet(setting, task=task, num_classes=num_classes, head=head).eval()
    from ..metrics.flops import count_macs
    return count_macs(net, (3, h, w), bn=True, bias=True)


__all__ = ["MultiResolutionNet", "count_flops", "FuseModule", "ParallelModule", "BasicBlock", "ConvBNReLU",
           "count_params", "SETTING_TASK", "SETTING_NUM_CLASSES", "PARAMS_NUM_CLASSES"]
