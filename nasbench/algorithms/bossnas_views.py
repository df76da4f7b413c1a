"""BYOL's asymmetric augmentation of the two views, as a seeded batch operation (BossNAS on ImageNet).

Source: [BOSS] changlin31/BossNAS ``searching/configs/mbconv_bs64_accumulate8_ep6_multi_aug_gpus8.py``
and ``hytra_...py`` (``train_pipeline1`` / ``train_pipeline2``), which are BYOL's (Grill et al.
2020, arXiv 2006.07733, table 6); METHODS.md 3.5. Per image of a view, in this order:

1. ``RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))``, bicubic (torchvision's sampling:
   10 tries, then the central crop of the clamped ratio);
2. horizontal flip with probability 0.5;
3. with probability 0.8 colour jitter (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1, the
   four in a random order, as torchvision's ``ColorJitter``);
4. grayscale with probability 0.2;
5. Gaussian blur with probability 0.1 (view 1) / 1.0 (view 2), sigma uniform in [0.1, 2.0]
   pixels (the reference blurs with PIL's radius = sigma; here a kernel of ``2 ceil(3 sigma) + 1``);
6. solarisation (pixels >= 0.5 inverted) with probability 0 (view 1) / 0.2 (view 2).

Every random draw comes from a ``torch.Generator`` the caller seeds per (epoch, batch, view),
so the views are reproducible and independent of sharding (the parameters of the whole global
batch are drawn, each rank applies its own shard's); the image operations are
``torchvision.transforms.v2.functional`` on float images in [0, 1].
"""
from __future__ import annotations

import math

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

__all__ = ["BLUR_P", "SOLARIZE_P", "draw_byol_params", "apply_byol", "byol_views_of_shard"]

#: per view (1, 2): probability of the Gaussian blur and of solarisation
BLUR_P = {1: 0.1, 2: 1.0}
SOLARIZE_P = {1: 0.0, 2: 0.2}


def _u(g, lo=0.0, hi=1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _crop_box(g, h: int, w: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random resized crop (torchvision's rule)."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _u(g, *scale)
        ar = math.exp(_u(g, *log_r))
        cw, ch = int(round(math.sqrt(target * ar))), int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=g))
            left = int(torch.randint(0, w - cw + 1, (), generator=g))
            return top, left, ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def draw_byol_params(g: torch.Generator, n: int, h: int, w: int, view: int) -> list[dict]:
    """The random choices of :func:`apply_byol` for ``n`` images of ``h x w`` pixels of view ``view`` (1 or 2)."""
    out = []
    for _ in range(n):
        p = {"crop": _crop_box(g, h, w), "flip": _u(g) < 0.5}
        if _u(g) < 0.8:
            order = torch.randperm(4, generator=g).tolist()
            p["jitter"] = (order, _u(g, 0.6, 1.4), _u(g, 0.6, 1.4), _u(g, 0.8, 1.2), _u(g, -0.1, 0.1))
        p["gray"] = _u(g) < 0.2
        p["blur"] = _u(g, 0.1, 2.0) if _u(g) < BLUR_P[view] else None
        p["solarize"] = _u(g) < SOLARIZE_P[view]
        out.append(p)
    return out


def apply_byol(img: torch.Tensor, p: dict, size: tuple[int, int]) -> torch.Tensor:
    """One image ``[3, H, W]`` float in [0, 1] -> its view ``[3, *size]`` in [0, 1] (see module doc)."""
    top, left, ch, cw = p["crop"]
    x = TF.resized_crop(img, top, left, ch, cw, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
    x = x.clamp_(0.0, 1.0)
    if p["flip"]:
        x = TF.horizontal_flip(x)
    if "jitter" in p:
        order, b, c, s, hue = p["jitter"]
        for i in order:
            if i == 0:
                x = TF.adjust_brightness(x, b)
            elif i == 1:
                x = TF.adjust_contrast(x, c)
            elif i == 2:
                x = TF.adjust_saturation(x, s)
            else:
                x = TF.adjust_hue(x, hue)
    if p["gray"]:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    if p["blur"] is not None:
        k = 2 * math.ceil(3 * p["blur"]) + 1
        x = TF.gaussian_blur(x, [k, k], [p["blur"], p["blur"]])
    if p["solarize"]:
        x = torch.where(x >= 0.5, 1.0 - x, x)
    return x


def byol_views_of_shard(x: torch.Tensor, g: torch.Generator, n_global: int, lo: int, view: int) -> torch.Tensor:
    """BYOL view ``view`` (1 or 2) of this rank's images ``x`` ``[b, 3, H, W]`` (float, 0..255).

    ``x`` holds images ``lo .. lo + b - 1`` of a global batch of ``n_global``; the parameters of all
    ``n_global`` images are drawn from ``g`` and the shard's are applied, so an image's view does not
    depend on the number of ranks. Returns ``[b, 3, H, W]`` float in 0..255.
    """
    _, _, h, w = x.shape
    params = draw_byol_params(g, n_global, h, w, view)[lo:lo + len(x)]
    return torch.stack([apply_byol(img / 255.0, p, (h, w)) for img, p in zip(x, params)]) * 255.0 \
        if len(x) else x.clone()
