"""Segmentation inference on whole images and by sliding windows (mmseg's 'whole' and 'slide' modes), plain torch.

Both take ``logits_fn(x) -> (B, K, h, w)``: a model that returns class logits at its input's resolution (the
segmentation model, which upsamples its head's output to the input size). Both return logits (B, K, H, W) at the
image's own size.

- ``whole_inference`` runs the model once on the image padded bottom/right with zeros (the mean, after
  normalisation) up to a multiple of ``stride`` (what the backbone's patches and windows need, e.g. patch x window
  x 2^(stages-1)), and cuts the padding off the logits.
- ``slide_inference`` runs it on ``crop``-sized windows every ``stride`` pixels, the last row and column of
  windows moved back to end at the border (so every window lies inside the image), and averages the logits where
  windows overlap. An image smaller than the crop along a side gets one window of the image's size there.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def whole_inference(logits_fn: LogitsFn, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Logits (B, K, H, W) of images ``x`` (B, C, H, W) in one pass, padded to a multiple of ``stride``."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    H, W = x.shape[-2:]
    padded = F.pad(x, (0, -W % stride, 0, -H % stride))  # bottom/right zeros
    logits = logits_fn(padded)
    if logits.shape[-2:] != padded.shape[-2:]:
        raise ValueError(f"logits_fn returned {tuple(logits.shape[-2:])} logits for a {tuple(padded.shape[-2:])} "
                         "input; it must return logits at its input's resolution")
    return logits[..., :H, :W]


def window_starts(size: int, crop: int, stride: int) -> list[int]:
    """First pixel of each window along one side (mmseg's grid): every ``stride``, the last ones clamped to end
    at the border, deduplicated."""
    if crop < 1 or stride < 1:
        raise ValueError(f"crop and stride must be >= 1, got {crop} and {stride}")
    count = max(size - crop + stride - 1, 0) // stride + 1
    return sorted({max(min(i * stride, size - crop), 0) for i in range(count)})


def slide_inference(logits_fn: LogitsFn, x: torch.Tensor, crop: tuple[int, int], stride: tuple[int, int],
                    pad_stride: int = 1, max_batch: int | None = None) -> torch.Tensor:
    """Logits (B, K, H, W) of images ``x`` (B, C, H, W) averaged over overlapping ``crop`` (h, w) windows placed
    every ``stride`` (h, w) pixels. The windows go through ``whole_inference(logits_fn, ., pad_stride)`` in batches
    of at most ``max_batch`` windows (None: all windows of all images in one call)."""
    B, _, H, W = x.shape
    ch, cw = min(crop[0], H), min(crop[1], W)
    tops, lefts = window_starts(H, crop[0], stride[0]), window_starts(W, crop[1], stride[1])
    boxes = [(top, left) for top in tops for left in lefts]
    windows = torch.cat([x[..., t : t + ch, l : l + cw] for t, l in boxes])  # (n_windows * B, C, ch, cw)
    step = len(windows) if max_batch is None else max(1, max_batch)
    logits = torch.cat([whole_inference(logits_fn, windows[i : i + step], pad_stride)
                        for i in range(0, len(windows), step)])  # (n_windows * B, K, ch, cw)
    total = logits.new_zeros(B, logits.shape[1], H, W)
    count = logits.new_zeros(1, 1, H, W)
    for i, (t, l) in enumerate(boxes):
        total[..., t : t + ch, l : l + cw] += logits[i * B : (i + 1) * B]
        count[..., t : t + ch, l : l + cw] += 1
    return total / count


def segment(model, x: torch.Tensor, inference: str = "whole", slide_stride: float = 2 / 3) -> torch.Tensor:
    """Logits (B, K, H, W) of a ``SwinSegmenter`` on images ``x`` (B, C, H, W) of any size, as a run evaluates them
    (``trainer.inference``): ``whole``, or ``slide`` on crops of the model's ``img_size`` every ``slide_stride`` x
    crop pixels."""
    if inference == "slide":
        crop = tuple(model.cfg.image_size)
        stride = tuple(max(1, round(c * slide_stride)) for c in crop)
        return slide_inference(model, x, crop, stride, pad_stride=model.stride)
    return whole_inference(model, x, stride=model.stride)
