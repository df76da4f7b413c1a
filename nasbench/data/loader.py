"""Deterministic, resumable, DDP-consistent batches from an in-memory dataset.

:class:`BatchLoader` replaces ``torch.utils.data.DataLoader`` for small
in-memory datasets (CIFAR). Everything random is a pure function of
``(seed, epoch, batch index)``:

* the sample order of epoch ``e`` is ``torch.randperm(N)`` drawn from
  ``torch.Generator().manual_seed(seed * 100003 + e)``;
* the augmentation of global batch ``i`` (per-image crop offsets and flips of
  the *whole global batch*, then the Cutout centres) is drawn from a
  generator seeded by a hash of ``(seed, e, i)``.

Hence batch ``i`` of epoch ``e`` is bit-identical whether or not earlier
batches were produced (exact resume with ``epoch(e, start=i)``), the global
RNG is never touched, and ``world_size`` processes with global batch ``B``
see exactly the (augmented) images one process with batch ``B`` sees: rank
``r`` gets the ``r``-th contiguous shard of every global batch.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch

from .cifar import CIFAR10_MEAN, CIFAR10_STD, InMemoryImages

__all__ = ["BatchLoader", "shift_flip", "cutout", "batch_seed"]

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """Seed (non-negative int < 2**63) of the augmentation generator of one global batch."""
    h = 0x243F6A8885A308D3
    for v in (seed, epoch, batch):
        h = _splitmix64(h ^ (int(v) & _MASK64))
    return h >> 1


def shift_flip(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor,
               pad: int = 4) -> torch.Tensor:
    """Vectorised CIFAR augmentation: zero-pad by ``pad``, crop back to ``H x W``
    at offset ``(dy, dx)``, then flip horizontally where ``flip`` is set.

    Equivalent to ``RandomCrop(H, padding=pad)`` followed by
    ``RandomHorizontalFlip`` with the crop's top-left corner at
    ``(pad + dy, pad + dx)`` in the padded image:
    ``out[b, :, y, x] = images[b, :, y + dy[b], x' + dx[b]]`` with
    ``x' = W - 1 - x`` if ``flip[b]`` else ``x``; pixels outside the image are 0.

    Args:
        images: ``[B, C, H, W]`` tensor of any dtype (uint8 in the loader).
        dy, dx: ``int64 [B]`` shifts in ``[-pad, pad]`` (0, 0 = no shift).
        flip: ``bool [B]``.
        pad: padding in pixels.

    Returns:
        a new tensor with the shape, dtype and device of ``images``.
    """
    b, c, h, w = images.shape
    hp, wp = h + 2 * pad, w + 2 * pad
    padded = images.new_zeros((b, c, hp, wp))
    padded[:, :, pad:pad + h, pad:pad + w] = images
    dev = images.device
    dy = dy.to(dev, torch.int64).clamp(-pad, pad)
    dx = dx.to(dev, torch.int64).clamp(-pad, pad)
    rows = torch.arange(h, device=dev)[None, :] + (dy + pad)[:, None]           # [B, H]
    cols = torch.arange(w, device=dev)[None, :] + (dx + pad)[:, None]           # [B, W]
    cols = torch.where(flip.to(dev, torch.bool)[:, None], cols.flip(1), cols)
    lin = (rows[:, :, None] * wp + cols[:, None, :]).reshape(b, 1, h * w)      # [B, 1, H*W]
    out = padded.reshape(b, c, hp * wp).gather(2, lin.expand(b, c, h * w))
    return out.reshape(b, c, h, w)


def cutout(images: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, length: int) -> torch.Tensor:
    """DeVries & Taylor's Cutout as DARTS' ``utils.Cutout``, vectorised: zero one square per image, in place.

    Image ``b`` gets ``images[b, :, y1:y2, x1:x2] = 0`` with
    ``y1 = clip(cy[b] - length // 2, 0, H)``, ``y2 = clip(cy[b] + length // 2, 0, H)``
    and likewise for ``x``: a ``length x length`` square (``length - 1`` when
    ``length`` is odd, as in DARTS) centred at ``(cy, cx)``, clipped at the
    borders. DARTS draws the centre uniformly over all ``H x W`` pixels and
    applies the mask after normalisation, so the square is the mean colour.

    Args:
        images: ``[B, C, H, W]`` (normalised float in the loader); modified and returned.
        cy, cx: ``int64 [B]`` centres, ``0 <= cy < H``, ``0 <= cx < W``.
        length: side of the square, pixels (0 = no-op).
    """
    if length <= 0 or images.shape[0] == 0:
        return images
    _, _, h, w = images.shape
    half, dev = int(length) // 2, images.device
    cy, cx = cy.to(dev, torch.int64)[:, None], cx.to(dev, torch.int64)[:, None]
    ys, xs = torch.arange(h, device=dev)[None, :], torch.arange(w, device=dev)[None, :]
    rows = (ys >= cy - half) & (ys < cy + half)                                  # [B, H]
    cols = (xs >= cx - half) & (xs < cx + half)                                  # [B, W]
    return images.masked_fill_((rows[:, :, None] & cols[:, None, :])[:, None], 0.0)


class BatchLoader:
    """Batches of an :class:`InMemoryImages`, deterministic per (seed, epoch, batch).

    Args:
        data: the dataset (uint8 images ``[N, C, H, W]``, int64 targets ``[N]``).
        batch_size: the GLOBAL batch size (over all ``world_size`` ranks).
        shuffle: new random order every epoch (else dataset order).
        augment: standard CIFAR augmentation (4-pixel zero padding + random
            crop + horizontal flip, see :func:`shift_flip`).
        seed: seed of orders and augmentations (the global RNG is not used).
        drop_last: drop the last incomplete global batch. If False the last
            global batch is split into ``world_size`` nearly equal contiguous
            shards; a rank's shard may be EMPTY (``b == 0``) so that every rank
            still yields ``len(loader)`` batches.
        rank, world_size: this process' shard of every global batch.
        mean, std: per-channel normalisation in [0, 1] pixel units
            (default CIFAR-10); ``None`` only scales pixels to [0, 1].
        device: device of the yielded tensors.
        pad: padding (= maximum shift) of the crop augmentation, pixels.
        cutout: side of the Cutout square (:func:`cutout`, after normalisation;
            centres uniform over the image, drawn after the crop/flip draws of
            the batch's generator, so ``0`` leaves every other draw unchanged).
            0 = off. Independent of ``augment``.

    Raises:
        ValueError: ``batch_size`` not divisible by ``world_size``, bad rank,
            or ``mean``/``std`` of the wrong length.

    Typical use: training ``BatchLoader(train, 256, True, True, seed)`` with
    ``for x, y in loader.epoch(e, start=k)``; evaluation
    ``BatchLoader(val, 500, shuffle=False, augment=False, drop_last=False)``
    with ``for x, y in loader`` (or ``loader.epoch(0)``).
    """

    def __init__(self, data: InMemoryImages, batch_size: int, shuffle: bool, augment: bool,
                 seed: int = 0, drop_last: bool = True, rank: int = 0, world_size: int = 1,
                 mean: Sequence[float] | None = CIFAR10_MEAN,
                 std: Sequence[float] | None = CIFAR10_STD,
                 device="cpu", pad: int = 4, cutout: int = 0):
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if int(world_size) <= 0 or not 0 <= int(rank) < int(world_size):
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if batch_size % world_size:
            raise ValueError(f"global batch_size={batch_size} is not divisible by "
                             f"world_size={world_size}; choose a multiple of {world_size}")
        self.data = data
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.pad = int(pad)
        self.cutout = int(cutout or 0)
        if self.cutout < 0:
            raise ValueError(f"cutout must be >= 0 pixels, got {cutout}")
        self.device = torch.device(device)
        channels = data.images.shape[1]
        mean = (0.0,) * channels if mean is None else tuple(float(m) for m in mean)
        std = (1.0,) * channels if std is None else tuple(float(s) for s in std)
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std need {channels} values, got {len(mean)}/{len(std)}")
        self.mean, self.std = mean, std
        # x_norm = (x / 255 - mean) / std = x * scale - shift
        self._scale = torch.tensor([1.0 / (255.0 * s) for s in std],
                                   device=self.device).view(1, -1, 1, 1)
        self._shift = torch.tensor([m / s for m, s in zip(mean, std)],
                                   device=self.device).view(1, -1, 1, 1)

    @property
    def local_batch_size(self) -> int:
        """Samples per full batch on this rank (``batch_size // world_size``)."""
        return self.batch_size // self.world_size

    def __len__(self) -> int:
        """Batches per epoch (the same on every rank)."""
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """``int64 [N]``: the sample order of ``epoch`` (identical on every rank)."""
        n = len(self.data)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(self.seed * 100003 + int(epoch))
        return torch.randperm(n, generator=g)

    def _shard(self, m: int) -> tuple[int, int]:
        base, extra = divmod(m, self.world_size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield this rank's batches of ``epoch``, beginning at global batch ``start``.

        Yields:
            ``(images, targets)``: ``float32 [b, C, H, W]`` normalised images and
            ``int64 [b]`` labels on ``device``; ``b == batch_size // world_size``
            except possibly for the last batch when ``drop_last=False``.

        Raises:
            ValueError: ``start`` outside ``[0, len(self)]``.
        """
        n_batches = len(self)
        if not 0 <= int(start) <= n_batches:
            raise ValueError(f"start={start} outside [0, {n_batches}]")
        order = self.order(epoch)
        images, targets = self.data.images, self.data.targets
        for i in range(int(start), n_batches):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            lo, hi = self._shard(len(idx))
            local = idx[lo:hi]
            x = images.index_select(0, local).to(self.device, non_blocking=True)
            y = targets.index_select(0, local).to(self.device, non_blocking=True)
            # uint8 -> float32 is exact, so augmenting the float copy gives the same
            # pixels as augmenting the uint8 batch, and gather is ~5x faster on float
            x = x.float()
            if self.augment or self.cutout:
                g = torch.Generator().manual_seed(batch_seed(self.seed, epoch, i))
            if self.augment:
                shifts = torch.randint(-self.pad, self.pad + 1, (2, len(idx)), generator=g)
                flips = torch.randint(0, 2, (len(idx),), generator=g).bool()
                x = shift_flip(x, shifts[0, lo:hi], shifts[1, lo:hi], flips[lo:hi], self.pad)
            x = x.mul_(self._scale).sub_(self._shift)
            if self.cutout:  # centres of the whole global batch, then this rank's shard
                cy = torch.randint(0, x.shape[2], (len(idx),), generator=g)
                cx = torch.randint(0, x.shape[3], (len(idx),), generator=g)
                x = cutout(x, cy[lo:hi], cx[lo:hi], self.cutout)
            yield x, y

    def __iter__(self):
        """Iterate epoch 0; only for loaders without shuffling and augmentation (evaluation).

        Raises:
            TypeError: the loader shuffles or augments (use ``epoch(e)`` so
                every epoch differs and resumes exactly).
        """
        if self.shuffle or self.augment or self.cutout:
            raise TypeError("iterate a shuffling/augmenting BatchLoader with loader.epoch(e)")
        return self.epoch(0)

    def __repr__(self) -> str:
        return (f"BatchLoader(n={len(self.data)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, augment={self.augment}, cutout={self.cutout}, seed={self.seed}, "
                f"rank={self.rank}/{self.world_size}, batches={len(self)})")
