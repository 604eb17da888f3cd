"""The Swin Transformer (V1 and V2, and every mix of their switches), built from a ``SwinConfig``."""

from __future__ import annotations

import torch
import torch.nn as nn

from swin_lit.models.blocks import Stage
from swin_lit.models.config import SwinConfig


class PatchEmbed(nn.Module):
    """(B, C_in, H, W) -> (B, H/p * W/p, C): non-overlapping p x p patches, linearly embedded."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, dim: int, norm: bool) -> None:
        super().__init__()
        self.img_size = img_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"input is {tuple(x.shape[-2:])} but the model was built for img_size {self.img_size}")
        x = self.proj(x).flatten(2).transpose(1, 2)  # (B, L, C)
        return self.norm(x) if self.norm is not None else x


class SwinTransformer(nn.Module):
    def __init__(self, cfg: SwinConfig) -> None:
        super().__init__()
        self.cfg = cfg
        geometry = cfg.stages()
        self.patch_embed = PatchEmbed(cfg.img_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim, cfg.patch_norm)
        if cfg.position in ("abs", "abs+table"):
            num_patches = (cfg.img_size // cfg.patch_size) ** 2
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, num_patches, cfg.embed_dim))
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
        self.norm = nn.LayerNorm(cfg.num_features)
        self.head = nn.Linear(cfg.num_features, cfg.num_classes)
        self.apply(_init_weights)
        if cfg.norm == "res_post":
            for stage in self.layers:
                for block in stage.blocks:
                    block.zero_init_post_norms()

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of each stage (after its patch merging), each (B, tokens, C)."""
        x = self.patch_embed(x)  # (B, L, C)
        if self.absolute_pos_embed is not None:
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        outs = []
        for stage in self.layers:
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, L, num_features), the normalised last-stage tokens."""
        return self.norm(self.forward_stages(x)[-1])

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.mean(dim=1))  # average-pool the tokens, classify

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def no_weight_decay(self) -> set[str]:
        """Parameter names excluded from weight decay (official recipe): norms, biases, the absolute
        embedding, relative position tables, the CPB MLP and the cosine logit scales."""
        names = set()
        for name, p in self.named_parameters():
            if p.ndim <= 1 or name.endswith(".bias") or name == "absolute_pos_embed":
                names.add(name)
            elif ".position_bias." in name or name.endswith("logit_scale"):
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
