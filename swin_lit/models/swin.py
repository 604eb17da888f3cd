"""The Swin Transformer (V1 and V2, and every mix of their switches), built from a ``SwinConfig``."""

from __future__ import annotations

import torch
import torch.nn as nn

from swin_lit.models.blocks import Stage, StageLayout
from swin_lit.models.config import SwinConfig
from swin_lit.models.position import resize_absolute


class PatchEmbed(nn.Module):
    """(B, C_in, H, W) -> (B, H/p * W/p, C) and the token grid (H/p, W/p): non-overlapping p x p patches,
    linearly embedded. Any H and W that the patch divides."""

    def __init__(self, patch_size: int, in_chans: int, dim: int, norm: bool) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        H, W = x.shape[-2:]
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(f"input is {H}x{W} but the patch size {self.patch_size} must divide both sides")
        x = self.proj(x)  # (B, C, H/p, W/p)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # (B, L, C)
        return (self.norm(x) if self.norm is not None else x), grid


class SwinTransformer(nn.Module):
    """Patch embedding (+ absolute embedding), stages of Swin blocks with patch merging between them, a final
    LayerNorm, token average pooling and a linear classifier.

    The model runs at any input size the patch divides. The geometry of each input size (windows padded,
    shifted, and clipped or not on small maps, by ``SwinConfig.stages``: ``small_maps`` and ``pad_keys`` choose
    the classification or the official dense code's rule) and its index / mask / coordinate tensors are built
    once per size and cached (``layout``), on the model's device and dtype, never in the state dict.
    At another token grid than the configured one, the absolute embedding is resized bicubically (as the official
    dense backbones do). Dense heads take ``forward_intermediates``.
    """

    def __init__(self, cfg: SwinConfig) -> None:
        super().__init__()
        self.cfg = cfg
        geometry = cfg.stages()
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim, cfg.patch_norm)
        if cfg.absolute == "learned":
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, cfg.grid[0] * cfg.grid[1], cfg.embed_dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        else:
            self.absolute_pos_embed = None
        self.pos_drop = nn.Dropout(cfg.drop_rate)

        # stochastic depth grows linearly over all blocks
        drop_paths = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths), device="cpu").tolist()
        pretrained = cfg.pretrained_window_sizes or (0,) * len(cfg.depths)
        self.layers = nn.ModuleList()
        for i, (g, depth) in enumerate(zip(geometry, cfg.depths)):
            first = sum(cfg.depths[:i])
            self.layers.append(
                Stage(g, depth, cfg, drop_paths[first : first + depth], pretrained[i], merge=i < len(cfg.depths) - 1)
            )
        for i in cfg.out_indices:  # per-stage output norms for dense heads (official names norm0..norm3)
            self.add_module(f"norm{i}", nn.LayerNorm(geometry[i].dim))
        self.norm = nn.LayerNorm(cfg.num_features)
        # num_classes 0: a backbone without a classifier (timm's convention), forward() gives pooled features
        self.head = nn.Linear(cfg.num_features, cfg.num_classes) if cfg.num_classes else nn.Identity()
        self.apply(_init_weights)
        for stage in self.layers:  # then the norm placement's own start (res_post: zero post-norms)
            for block in stage.blocks:
                block.placement.init_norms(block.norm1, block.norm2)
        self._layouts: dict[tuple[int, int], tuple[StageLayout, ...]] = {}
        self.layout(cfg.grid)

    # -- per-input-size tensors ------------------------------------------------------------------------
    def layout(self, grid: tuple[int, int]) -> tuple[StageLayout, ...]:
        """The per-stage index / mask / coordinate tensors for a token grid (H/p, W/p): built on first use for
        that size (the configured size at construction), then a dict lookup."""
        layout = self._layouts.get(grid)
        if layout is None:
            layout = self._layouts[grid] = self._build_layout(grid)
        return layout

    @torch.compiler.disable  # plain eager Python, once per size; a compiled forward then finds it in the dict
    def _build_layout(self, grid: tuple[int, int]) -> tuple[StageLayout, ...]:
        param = next(self.parameters())
        dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.float32)

        def move(value):
            if not isinstance(value, torch.Tensor):
                return value
            return value.to(param.device, dtype=dtype if value.is_floating_point() else value.dtype)

        with torch.inference_mode(False):  # normal tensors, even when a size is first met in inference mode
            with torch.device("cpu"):
                stages = [stage.layout(g) for stage, g in zip(self.layers, self.cfg.stages(grid))]
            return tuple(StageLayout(s.resolution, tuple(b._make(map(move, b)) for b in s.blocks)) for s in stages)

    def _apply(self, fn, recurse=True):
        """Device and dtype moves (``to``, ``double``, ``cuda`` ...) rebuild the cached layouts on the new device."""
        super()._apply(fn, recurse)
        self._layouts = {}
        self.layout(self.cfg.grid)
        return self

    # -- forward ---------------------------------------------------------------------------------------
    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, C_in, H, W) -> (B, L, C) tokens (+ absolute embedding, resized to another grid) and the grid."""
        x, grid = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            x = x + resize_absolute(self.absolute_pos_embed, self.cfg.grid, grid)
        return self.pos_drop(x), grid

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of each stage (after its patch merging, the official ``layers[i]``), each (B, tokens, C)."""
        x, grid = self._embed(x)
        outs = []
        for stage, layout in zip(self.layers, self.layout(grid)):
            _, x = stage(x, layout)
            outs.append(x)
        return outs

    def forward_intermediates(self, x: torch.Tensor, indices=(0, 1, 2, 3)) -> list[torch.Tensor]:
        """Multi-scale features for dense heads: for each stage in ``indices`` (in that order), its blocks' output
        BEFORE its patch merging, through its own LayerNorm (``norm{i}``), as an NCHW map (B, C_i, H_i, W_i) at
        stride patch * 2^i. The norms exist for the stages in ``cfg.out_indices`` (ValueError for others)."""
        indices = tuple(indices)
        missing = [i for i in indices if i not in self.cfg.out_indices]
        if not indices or missing:
            raise ValueError(f"forward_intermediates: stage {missing[0] if missing else indices} has no output norm; "
                             f"build the model with out_indices listing it (this model has "
                             f"out_indices={list(self.cfg.out_indices)})")
        B = x.shape[0]
        x, grid = self._embed(x)
        maps = {}
        for i, (stage, layout) in enumerate(zip(self.layers, self.layout(grid))):
            features, x = stage(x, layout)
            if i in indices:
                H, W = layout.resolution
                maps[i] = getattr(self, f"norm{i}")(features).view(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
            if len(maps) == len(indices):
                break
        return [maps[i] for i in indices]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, L, num_features), the normalised last-stage tokens."""
        return self.norm(self.forward_stages(x)[-1])

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.mean(dim=1))  # average-pool the tokens, classify

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def no_weight_decay(self) -> set[str]:
        """Parameter names excluded from weight decay (official recipe): norms, biases, the absolute
        embedding, every relative position bias parameter (tables, CPB MLPs) and the cosine logit scales."""
        names = set()
        for name, p in self.named_parameters():
            if p.ndim <= 1 or name.endswith(".bias") or name == "absolute_pos_embed":
                names.add(name)
            elif ".relative_bias." in name or name.endswith("logit_scale"):
                names.add(name)
        return names


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
