"""Whole-image and sliding-window inference: padding cut off, windows placed like mmseg's 'slide', overlaps
averaged (by hand), and whole-image inference on a rectangular image equal to the stitched windows where the
windows tile it."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from swin_lit.models.seg_inference import slide_inference, whole_inference, window_starts


class BlockConvNet(nn.Module):
    """A conv net run on each ``block`` x ``block`` tile of its input on its own (zero padding at the tile's
    border): a pixel's logits depend on its tile only, as a windowed model's do. Needs H, W multiples of block."""

    def __init__(self, block: int, classes: int = 4) -> None:
        super().__init__()
        self.block = block
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, classes, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        b = self.block
        if H % b or W % b:
            raise ValueError(f"input {H}x{W} is not a multiple of {b}")
        tiles = x.view(B, C, H // b, b, W // b, b).permute(0, 2, 4, 1, 3, 5).reshape(-1, C, b, b)
        y = self.net(tiles)  # (B * tiles, K, b, b)
        K = y.shape[1]
        return y.view(B, H // b, W // b, K, b, b).permute(0, 3, 1, 4, 2, 5).reshape(B, K, H, W)


@pytest.fixture
def image() -> torch.Tensor:
    return torch.randn(2, 3, 48, 80)  # rectangular


@pytest.mark.parametrize("crop, stride", [
    ((16, 16), (16, 16)),  # windows tile the image
    ((32, 16), (16, 16)),  # overlapping rows of windows, tile-aligned
    ((32, 48), (16, 16)),  # overlapping both ways; the last windows moved back to the border stay aligned
    ((48, 80), (16, 16)),  # one window: the whole image
])
def test_whole_equals_stitched_windows_where_they_tile(image, crop, stride):
    model = BlockConvNet(16).eval()
    with torch.no_grad():
        whole = whole_inference(model, image, stride=16)
        slid = slide_inference(model, image, crop, stride, pad_stride=16)
    assert whole.shape == slid.shape == (2, 4, 48, 80)
    torch.testing.assert_close(slid, whole, rtol=1e-5, atol=1e-6)


def test_windows_matter_for_a_model_that_sees_across_them(image):
    model = nn.Conv2d(3, 4, 5, padding=2)  # sees 2 pixels across every window border
    with torch.no_grad():
        assert not torch.allclose(whole_inference(model, image), slide_inference(model, image, (16, 16), (16, 16)))


def test_whole_pads_bottom_right_and_cuts_the_padding():
    model = BlockConvNet(16).eval()
    x = torch.randn(1, 3, 45, 70)  # neither side a multiple of 16
    with pytest.raises(ValueError):
        model(x)
    with torch.no_grad():
        out = whole_inference(model, x, stride=16)
        assert out.shape == (1, 4, 45, 70)
        # tiles away from the padding see exactly the image: the padding went bottom/right
        torch.testing.assert_close(out[..., :32, :64], model(x[..., :32, :64]))
        torch.testing.assert_close(out, model(F.pad(x, (0, 10, 0, 3)))[..., :45, :70])


def test_logits_must_come_at_the_input_resolution():
    with pytest.raises(ValueError, match="at its input's resolution"):
        whole_inference(lambda x: x[..., ::2, ::2], torch.zeros(1, 3, 8, 8))


def test_window_starts_like_mmseg():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]  # the last window moved back to end at the border
    assert window_starts(16, 16, 8) == [0]
    assert window_starts(3, 4, 2) == [0]  # smaller than the crop: one window of the image's size


def test_overlaps_are_averaged_by_hand():
    x = torch.arange(10.0).view(1, 1, 1, 10)

    def window_mean(t: torch.Tensor) -> torch.Tensor:  # each window's logits: the mean of its pixels
        return t.mean((2, 3), keepdim=True).expand_as(t)

    out = slide_inference(window_mean, x, crop=(1, 4), stride=(1, 3))  # windows [0, 4), [3, 7), [6, 10)
    a, b, c = 1.5, 4.5, 7.5
    assert out.view(-1).tolist() == [a, a, a, (a + b) / 2, b, b, (b + c) / 2, c, c, c]


def test_windows_in_batches_give_the_same_logits(image):
    calls = []
    model = BlockConvNet(16).eval()

    def counted(t: torch.Tensor) -> torch.Tensor:
        calls.append(len(t))
        return model(t)

    with torch.no_grad():
        at_once = slide_inference(counted, image, (32, 48), (16, 16))
        assert calls == [12]  # 2 x 3 windows for each of the 2 images, one call
        calls.clear()
        batched = slide_inference(counted, image, (32, 48), (16, 16), max_batch=5)
    assert calls == [5, 5, 2]
    torch.testing.assert_close(batched, at_once)
