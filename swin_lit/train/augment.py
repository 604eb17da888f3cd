"""Batch-level augmentation in plain torch (no torchvision): RandAugment, random erasing, mixup / cutmix.

All functions take a float batch (B, C, H, W) that is already normalised, and a ``torch.Generator`` so
that a run is reproducible from its seed. They run on the batch's device inside the training step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from swin_lit.config import OptimConfig


def _rand(shape, gen: torch.Generator, like: torch.Tensor, normal: bool = False) -> torch.Tensor:
    """Random numbers from the run's (CPU) generator, moved to the batch's device."""
    draw = torch.randn if normal else torch.rand
    return draw(shape, generator=gen).to(device=like.device, dtype=like.dtype)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return _rand(n, gen, like) * (hi - lo) + lo


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _geometric(x: torch.Tensor, op: str, m: torch.Tensor) -> torch.Tensor:
    """Rotate / shear / translate each image by its own signed magnitude m in [-1, 1]."""
    B = x.shape[0]
    theta = torch.zeros(B, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    if op == "rotate":
        a = m * math.radians(30.0)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
    elif op == "shear_x":
        theta[:, 0, 1] = m * 0.3
    elif op == "shear_y":
        theta[:, 1, 0] = m * 0.3
    elif op == "translate_x":
        theta[:, 0, 2] = m * 0.45 * 2  # affine_grid spans [-1, 1]: 0.45 of the width
    elif op == "translate_y":
        theta[:, 1, 2] = m * 0.45 * 2
    return _affine(x, theta)


def _photometric(x: torch.Tensor, op: str, m: torch.Tensor) -> torch.Tensor:
    """Brightness / contrast / colour / sharpness / solarize / posterize-like changes, magnitude m in [-1, 1]."""
    f = (1.0 + 0.9 * m).view(-1, 1, 1, 1)
    if op == "brightness":
        return x * f
    if op == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * f + mean
    if op == "color":
        gray = x.mean(dim=1, keepdim=True)
        return (x - gray) * f + gray
    if op == "sharpness":
        blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return blur + (x - blur) * f
    if op == "solarize":
        thresh = (1.0 - m.abs()).view(-1, 1, 1, 1) * x.abs().amax(dim=(1, 2, 3), keepdim=True)
        return torch.where(x.abs() >= thresh, -x, x)
    if op == "posterize":
        levels = (16 - 12 * m.abs()).round().view(-1, 1, 1, 1)
        lo, hi = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
        unit = (x - lo) / (hi - lo).clamp_min(1e-6)
        return (unit * levels).floor() / levels * (hi - lo) + lo
    return x


GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
OPS = ("identity", "rotate", "shear_x", "shear_y", "translate_x", "translate_y",
       "brightness", "contrast", "color", "sharpness", "solarize", "posterize")


def rand_augment(x: torch.Tensor, ops: int, magnitude: int, gen: torch.Generator) -> torch.Tensor:
    """RandAugment: ``ops`` random operations per image, each at ``magnitude``/10 with a random sign
    and a small per-image jitter (like timm's mstd 0.5). Vectorised: each op is applied to the images
    that drew it."""
    B = x.shape[0]
    for _ in range(ops):
        choice = torch.randint(len(OPS), (B,), generator=gen).to(x.device)
        sign = torch.where(_rand(B, gen, x) < 0.5, -1.0, 1.0)
        mag = (magnitude / 10.0 + 0.05 * _rand(B, gen, x, normal=True)).clamp(0, 1) * sign
        out = x.clone()
        for i, op in enumerate(OPS[1:], start=1):
            idx = (choice == i).nonzero().squeeze(1)
            if idx.numel():
                fn = _geometric if op in GEOMETRIC else _photometric
                out[idx] = fn(x[idx], op, mag[idx].to(x.dtype))
        x = out
    return x


def random_erasing(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Erase one random rectangle (2%-1/3 of the area, aspect 0.3-3.3) per image with probability p,
    filling it with per-pixel normal noise (timm's 'pixel' mode)."""
    B, C, H, W = x.shape
    dev = x.device
    apply = _rand(B, gen, x) < p
    area = _uniform(B, 0.02, 1 / 3, gen, x) * H * W
    aspect = torch.exp(_uniform(B, math.log(0.3), math.log(1 / 0.3), gen, x))
    h = (area * aspect).sqrt().clamp(1, H)
    w = (area / aspect).sqrt().clamp(1, W)
    top = _rand(B, gen, x) * (H - h)
    left = _rand(B, gen, x) * (W - w)
    rows = torch.arange(H, device=dev).view(1, H, 1)
    cols = torch.arange(W, device=dev).view(1, 1, W)
    box = (rows >= top.view(B, 1, 1)) & (rows < (top + h).view(B, 1, 1)) & \
          (cols >= left.view(B, 1, 1)) & (cols < (left + w).view(B, 1, 1)) & apply.view(B, 1, 1)
    noise = _rand(x.shape, gen, x, normal=True)
    return torch.where(box.unsqueeze(1), noise, x)


def soft_targets(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """(B,) labels -> (B, num_classes) label-smoothed one-hot targets."""
    off = smoothing / num_classes
    targets = torch.full((y.shape[0], num_classes), off, device=y.device)
    return targets.scatter_(1, y.unsqueeze(1), 1.0 - smoothing + off)


def mix(x: torch.Tensor, targets: torch.Tensor, cfg: OptimConfig, gen: torch.Generator):
    """Mixup or CutMix on the whole batch (one lambda per batch, pairs with the flipped batch; timm's
    'batch' mode). Chooses CutMix with probability 0.5 when both are on. Returns (x, targets)."""
    if cfg.mixup_alpha <= 0 and cfg.cutmix_alpha <= 0:
        return x, targets
    if torch.rand(1, generator=gen).item() >= cfg.mix_prob:
        return x, targets
    use_cutmix = cfg.cutmix_alpha > 0 and (cfg.mixup_alpha <= 0 or torch.rand(1, generator=gen).item() < 0.5)
    alpha = cfg.cutmix_alpha if use_cutmix else cfg.mixup_alpha
    lam = _beta(alpha, gen)
    flipped = x.flip(0)
    if use_cutmix:
        H, W = x.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        h, w = int(H * cut), int(W * cut)
        cy, cx = torch.randint(H, (1,), generator=gen).item(), torch.randint(W, (1,), generator=gen).item()
        y0, y1, x0, x1 = max(cy - h // 2, 0), min(cy + h // 2, H), max(cx - w // 2, 0), min(cx + w // 2, W)
        x = x.clone()
        x[..., y0:y1, x0:x1] = flipped[..., y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (H * W)
    else:
        x = x * lam + flipped * (1.0 - lam)
    return x, targets * lam + targets.flip(0) * (1.0 - lam)


def _beta(alpha: float, gen: torch.Generator) -> float:
    """Beta(alpha, alpha) sample from two seeded gamma draws."""
    # private: torch.distributions.Gamma samples take no Generator, and the draw must be a function of the
    # seeded generator (resumable, paired across variants); _standard_gamma is the op Gamma itself calls
    a = torch._standard_gamma(torch.full((2,), alpha), generator=gen)
    return (a[0] / a.sum()).item()


def batch_augment(x: torch.Tensor, ops: tuple[str, ...], o: OptimConfig, gen: torch.Generator) -> torch.Tensor:
    """The batch augmentations ``ops`` (the data's ``step_augments``: ``randaugment``, ``random_erasing``) that
    ``o`` switches on, in that order, from ``gen``; ``x`` unchanged for none."""
    if "randaugment" in ops and o.randaugment_ops:
        x = rand_augment(x, o.randaugment_ops, o.randaugment_magnitude, gen)
    if "random_erasing" in ops and o.random_erasing:
        x = random_erasing(x, o.random_erasing, gen)
    return x
