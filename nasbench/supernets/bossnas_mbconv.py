"""Block-wise single-path supernet of the BossNAS MBConv space.

A :class:`~nasbench.supernets.choice.ChoiceSupernet` (every layer holds its 4
candidate operators; ``set_active`` / ``forward`` / ``export`` as for SPOS)
plus :meth:`BossNASMBConvSupernet.forward_block`, which runs one BossNAS
block on one path without touching the active architecture. Source: [BOSS]
``searching/bossnas/models/supernets/mbconv_supernet.py`` (METHODS.md 3.2);
there the projector of block ``b`` takes the block's own width (24, 40, 80,
112, 192), so no adapters are needed.

For BossNAS's siamese training (``algorithm.type: bossnas``) every block also
has a projector (GAP, ``c_b -> projector_hidden``, BN1d, ReLU, ``->
projection_dim``) and a predictor (``projection_dim -> projector_hidden ->
projection_dim``), the reference's ``NonLinearNeckSimCLR`` necks and
``LatentPredictHead`` (``siamese_supernets_mbconv.py``,
``configs/mbconv_bs64_accumulate8_ep6_multi_aug_gpus8.py``: 4096 / 256).
They are the supernet's ``projectors`` / ``predictors`` and are not part of
any exported network.
"""
from __future__ import annotations

import torch.nn as nn

from ..errors import ArchError
from .bossnas_nats import MLPHead
from .base import BlockwiseSupernet
from .choice import ChoiceSupernet


class BossNASMBConvSupernet(BlockwiseSupernet, ChoiceSupernet):
    """MBConv supernet with block-wise forward and BossNAS heads (see module doc).

    Args:
        net: the space's network with :class:`~nasbench.supernets.choice.ChoiceBlock` layers.
        space: the :class:`~nasbench.spaces.bossnas_mbconv.BossNASMBConvSpace`
            (``block_widths``, ``projector_hidden``, ``projection_dim``).
    """

    def __init__(self, net, space):
        super().__init__(net, space)
        h, d = space.projector_hidden, space.projection_dim
        self.projectors = nn.ModuleList(MLPHead(c, h, d, pool=True) for c in space.block_widths)
        self.predictors = nn.ModuleList(MLPHead(d, h, d) for _ in space.block_widths)

    def forward_block(self, x, block: int, path=None):
        """Run block ``block`` on ``x`` with the operators ``path``.

        Args:
            x: block 0: images ``[N, 3, H, W]`` (stem and the fixed MB1 layer
                run first); block ``b > 0``: the output of block ``b - 1``.
            path: the block's genes (sequence of ints), its block key
                (``"1101"``), or None for the active architecture's.
        Returns:
            ``[N, c_b, H', W']`` with ``c_b`` the block's width (24, 40, 80, 112, 192).
        Raises:
            ArchError: bad path or no active architecture; IndexError: bad block.
        """
        sl = self.space.block_slice(block)
        if path is None:
            if self.active is None:
                raise ArchError(f"{self.space.name}: no path given and no active architecture (call set_active)")
            path = self.active[0][sl]
        elif isinstance(path, str):
            path = self.space.decode_block_key(block, path)
        else:
            path = tuple(int(v) for v in path)
            if len(path) != sl.stop - sl.start or any(v not in self.space.choices(i)
                                                      for i, v in zip(range(sl.start, sl.stop), path)):
                raise ArchError(f"{self.space.name}: block {block} path {path!r} must be "
                                f"{sl.stop - sl.start} operators in 0..3")
        if block == 0:
            x = self.net.features[0](self.net.stem(x))
        for layer, v in zip(range(sl.start, sl.stop), path):
            x = self.blocks[layer].op(v)(x)
        return x

    def forward_last(self, x):
        """The fixed last layer and the classifier on the output of the last block: logits ``[N, num_classes]``."""
        net = self.net
        return net.classifier(net.dropout(net.head(net.features[-1](x)).flatten(1)))

    def project(self, x, block: int, path=None):
        """Projection ``[N, projection_dim]`` of block ``block`` run on ``x`` with ``path`` (as :meth:`forward_block`)."""
        return self.projectors[block](self.forward_block(x, block, path))

    def predict(self, x, block: int, path=None):
        """Online prediction ``[N, projection_dim]``: :meth:`project` followed by the block's predictor."""
        return self.predictors[block](self.project(x, block, path))

    def block_modules(self, block: int) -> list[nn.Module]:
        """Modules of block ``block``: its candidates (and the stem + fixed MB1 layer for block 0),
        projector and predictor."""
        sl = self.space.block_slice(block)
        return (([self.net.stem, self.net.features[0]] if block == 0 else []) + list(self.blocks[sl])
                + [self.projectors[block], self.predictors[block]])


__all__ = ["BossNASMBConvSupernet"]
