"""Generated photo-like images for tests and benchmarks: smooth colour gradients plus texture at several scales,
so that JPEG files of them have realistic sizes (a 500x375 one at quality 90 is ~70-100 kB, like ImageNet's)
and reduced-scale decoding is measured on content with real high-frequency detail."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def _upsampled(small: np.ndarray, width: int, height: int, resample: Image.Resampling) -> np.ndarray:
    """float (h, w, 3) in about 0..255 -> int16 (height, width, 3), resized by Pillow (fast C)."""
    as_bytes = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8))
    return np.asarray(as_bytes.resize((width, height), resample), dtype=np.int16)


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """uint8 (height, width, 3): gradients and a few soft blobs (drawn at 1/8 size and resized bilinearly), plus
    noise texture at 1, 2, 8 and 32 pixel scales."""
    rng = np.random.default_rng(seed)
    sh, sw = height // 8 + 1, width // 8 + 1
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32) / max(sw, sh)
    phase = rng.uniform(0, 2 * np.pi, 3)
    small = np.stack([np.sin(5 * xx + phase[0]), np.cos(4 * yy + 2 * xx + phase[1]),
                      np.sin(3 * (xx - yy) + phase[2])], axis=-1) * 70 + 120
    for cx, cy, r, level in rng.uniform([0, 0, 0.05, -80], [1, 1, 0.3, 80], size=(4, 4)):
        small += (level * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None]
    image = _upsampled(small, width, height, Image.Resampling.BILINEAR)
    for cell, amplitude in ((2, 8.0), (8, 10.0), (32, 12.0)):
        noise = rng.standard_normal((height // cell + 1, width // cell + 1, 3), dtype=np.float32) * amplitude + 128
        image += _upsampled(noise, width, height, Image.Resampling.NEAREST) - 128
    image += rng.integers(-10, 11, (height, width, 3), dtype=np.int16)  # pixel-scale grain
    return np.clip(image, 0, 255).astype(np.uint8)


def photo_jpeg(width: int, height: int, seed: int = 0, quality: int = 90, path: str | Path | None = None) -> bytes:
    """``photo_like`` encoded as a JPEG (written to ``path`` when given); returns the file's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(photo_like(width, height, seed)).save(buffer, "JPEG", quality=quality)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data
