"""Pictures of the model's window machinery: the shifted-window attention mask, learned position biases, the
attention weights of each block and what a dense head reads.

The data come from ``swin_lit.models.windows`` (``region_labels``, ``attention_mask``, ``window_partition``),
from the model's own relative-bias modules (each kind's ``offset_image``), from its attention modules (whatever
similarity kind they hold: ``WindowAttention.weights``) and from heads built through the head registry; nothing
here re-derives the mask rules or names a kind.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

DPI = 150


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _window_grid(ax, size: int, window: int, colour: str = "k") -> None:
    for k in range(0, size + 1, window):
        ax.axhline(k - 0.5, color=colour, lw=1.4)
        ax.axvline(k - 0.5, color=colour, lw=1.4)


def mask_data(size: int, window: int, shift: int | None = None) -> dict:
    """Numbers behind the mask figure: region labels of the shifted map and the per-window masks.

    Returns ``{"shift", "padded", "labels" (P, P), "window_labels" (nW, N), "masks" (nW, N, N) bool allowed}``.
    """
    import torch

    from swin_lit.models.windows import attention_mask, region_labels, window_partition

    if size < 1 or window < 1:
        raise ValueError(f"size and window must be >= 1, got size={size}, window={window}")
    if window > size:
        raise ValueError(
            f"window {window} is larger than the map ({size}); the model would use one {size}x{size} window"
        )
    shift = window // 2 if shift is None else shift
    if not 0 <= shift < window:
        raise ValueError(f"shift must be in [0, window) = [0, {window}), got {shift}")
    padded = -(-size // window) * window
    if shift > 0:
        labels = region_labels(padded, window, shift)
    else:
        labels = torch.zeros(padded, padded, dtype=torch.long)
    window_labels = window_partition(labels[None, :, :, None], window).squeeze(-1)  # (nW, N)
    mask = attention_mask(size, window, shift)
    n_windows, n = window_labels.shape
    allowed = torch.ones(n_windows, n, n, dtype=torch.bool) if mask is None else mask == 0
    return {"shift": shift, "padded": padded, "labels": labels.numpy(), "window_labels": window_labels.numpy(),
            "masks": allowed.numpy()}


def _shown_windows(n_side: int) -> list[int]:
    """All windows for small maps; else the four kinds (interior, right edge, bottom edge, corner)."""
    if n_side * n_side <= 16:
        return list(range(n_side * n_side))
    return [0, n_side - 1, n_side * (n_side - 1), n_side * n_side - 1]


def draw_mask(size: int, window: int, path: str | Path, shift: int | None = None) -> Path:
    """The shifted-window attention mask like the Swin paper's figure, saved to ``path``.

    Top left: the size x size token map with its regular window grid. Top right: the map after the cyclic
    shift by ``shift`` (default window // 2) with its 9 regions coloured and labelled, and the window grid.
    Bottom: for the shifted windows, the N x N masks (N = window^2): light = query may attend to key,
    dark = masked (different regions, or padding).
    """
    plt = _plt()
    from matplotlib.colors import ListedColormap

    d = mask_data(size, window, shift)
    shift, padded, labels, masks = d["shift"], d["padded"], d["labels"], d["masks"]
    n_side = padded // window
    shown = _shown_windows(n_side)
    cols = min(len(shown), 4)
    mask_rows = math.ceil(len(shown) / cols)
    fig = plt.figure(figsize=(8.0, 4.4 + 2.1 * mask_rows), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(1 + mask_rows, 4, height_ratios=[2.0] + [1.0] * mask_rows)
    ax_map, ax_shift = fig.add_subplot(grid[0, 0:2]), fig.add_subplot(grid[0, 2:4])
    region_colours = ListedColormap(plt.get_cmap("tab10").colors[:9])

    # Token map with the regular window partition (windows tinted alternately), token lines thin, and the
    # shifted block's windows dashed (displaced by ``shift`` tokens).
    rows, cols_idx = np.indices((padded, padded))
    tint = ((rows // window) + (cols_idx // window)) % 2
    ax_map.imshow(tint, cmap=ListedColormap(["#dde8f5", "#bcd2ea"]), interpolation="nearest")
    if padded <= 32:
        for k in range(padded + 1):
            ax_map.axhline(k - 0.5, color="white", lw=0.5)
            ax_map.axvline(k - 0.5, color="white", lw=0.5)
    _window_grid(ax_map, padded, window)
    if shift:
        for k in range(shift, padded, window):
            ax_map.axhline(k - 0.5, color="C3", lw=1.4, ls="--")
            ax_map.axvline(k - 0.5, color="C3", lw=1.4, ls="--")
    if padded != size:
        ax_map.add_patch(plt.Rectangle((size - 0.5, -0.5), padded - size, padded, color="0.6", alpha=0.6))
        ax_map.add_patch(plt.Rectangle((-0.5, size - 0.5), padded, padded - size, color="0.6", alpha=0.6))
    ax_map.set_title(
        f"{size}×{size} tokens, {window}×{window} windows" + (f" (padded to {padded})" if padded != size else "")
        + ("\nsolid: regular windows, dashed: shifted windows" if shift else ""), fontsize=9)

    # Cyclically shifted map: regions coloured, labels printed at each region's centre.
    ax_shift.imshow(labels, cmap=region_colours, vmin=-0.5, vmax=8.5, interpolation="nearest")
    _window_grid(ax_shift, padded, window)
    for label in np.unique(labels):
        ys, xs = np.nonzero(labels == label)
        ax_shift.text(xs.mean(), ys.mean(), str(label), ha="center", va="center", fontsize=10, weight="bold",
                      color="white")
    ax_shift.set_title(f"map rolled by -{shift} (cyclic shift): {len(np.unique(labels))} regions\n"
                       "regular window grid on the rolled map", fontsize=9)
    for ax in (ax_map, ax_shift):
        ax.set_xticks([])
        ax.set_yticks([])

    # Per-window masks.
    axes = np.array([fig.add_subplot(grid[1 + i // cols, i % cols]) for i in range(mask_rows * cols)])
    n = window * window
    for ax, w in zip(axes, shown):
        ax.imshow(masks[w], cmap=ListedColormap(["#3b3b3b", "#f2f2f2"]), vmin=0, vmax=1, interpolation="nearest")
        regions = d["window_labels"][w]
        # Region of each query/key as coloured strips along the axes.
        ax.imshow(regions[None, :], cmap=region_colours, vmin=-0.5, vmax=8.5, extent=(-0.5, n - 0.5, -0.5, -1.5),
                  interpolation="nearest")
        ax.imshow(regions[:, None], cmap=region_colours, vmin=-0.5, vmax=8.5, extent=(-1.5, -0.5, n - 0.5, -0.5),
                  interpolation="nearest")
        ax.set_xlim(-1.5, n - 0.5)
        ax.set_ylim(n - 0.5, -1.5)
        r, c = divmod(w, n_side)
        blocked = int((~masks[w]).sum())
        ax.set_title(f"window ({r},{c}): {blocked}/{n * n} masked", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(shown):]:
        ax.axis("off")
    fig.suptitle(f"Shifted-window attention mask (H={size}, M={window}, shift={shift})\n"
                 "bottom: per-window N×N masks of the shifted block; rows: queries, columns: keys, "
                 "strips: their regions; light = attend, dark = masked", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# -- position bias ---------------------------------------------------------------------------------------------


def bias_tables(model) -> list[tuple[str, np.ndarray | None]]:
    """(label, (heads, 2M-1, 2M-1) array or None) per block, in model order: what each block's relative-bias
    kind draws (``RelativeBias.offset_image``: the table kind its table, CPB kinds 16 * sigmoid(MLP(coords)) over
    the offset grid); None for blocks without a relative position bias. Rows index the vertical offset dh,
    columns dw."""
    import torch

    out = []
    for i, stage in enumerate(model.layers):
        for j, block in enumerate(stage.blocks):
            module = block.attn.relative_bias
            label = f"stage {i + 1} block {j + 1}"
            if module is None:
                out.append((label, None))
                continue
            with torch.no_grad():
                image = module.offset_image().detach().float()
            out.append((label, image.cpu().numpy()))
    return out


def draw_position_bias(model, path: str | Path, title: str | None = None) -> Path:
    """Each head's relative position bias per block as a (2M-1) x (2M-1) image over the offsets (dh, dw).

    One row per block (only the first block of each stage when the model has more than 12 blocks), one
    column per head; each row shares one colour scale with its colour bar.
    """
    plt = _plt()
    tables = bias_tables(model)
    if len(tables) > 12:
        tables = [t for t in tables if t[0].endswith("block 1")]
    rows_with_bias = [(label, t) for label, t in tables if t is not None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from swin_lit.models.position import RelativeBias

    relative = getattr(getattr(model, "cfg", None), "relative", "?")
    kinds = {type(m) for m in model.modules() if isinstance(m, RelativeBias)}
    what = "; ".join(sorted(k.description for k in kinds if k.description))
    title = title or f"relative position bias (relative={relative})"
    if what:
        title += f"\n{what}"
    if not rows_with_bias:
        fig, ax = plt.subplots(figsize=(6.4, 2.0), dpi=DPI)
        ax.text(0.5, 0.5, f"no relative position bias in this model (relative={relative})", ha="center",
                va="center")
        ax.axis("off")
        fig.suptitle(title, fontsize=10)
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        return path
    heads = max(t.shape[0] for _, t in rows_with_bias)
    cell = 1.25
    fig, axes = plt.subplots(len(tables), heads + 1, squeeze=False, dpi=DPI, layout="constrained",
                             figsize=(1.2 + cell * heads + 0.35, 0.6 + cell * len(tables)),
                             gridspec_kw={"width_ratios": [1.0] * heads + [0.08]})
    titled: set[int] = set()
    for r, (label, table) in enumerate(tables):
        for h in range(heads):
            ax = axes[r, h]
            ax.set_xticks([])
            ax.set_yticks([])
            if table is None or h >= table.shape[0]:
                ax.axis("off")
                if table is None and h == 0:
                    ax.text(0.5, 0.5, "no bias", ha="center", va="center", fontsize=8, transform=ax.transAxes)
                continue
            m = (table.shape[-1] + 1) // 2
            image = ax.imshow(table[h], cmap="viridis", vmin=table.min(), vmax=table.max(), interpolation="nearest",
                              extent=(-m + 0.5, m - 0.5, m - 0.5, -m + 0.5))
            ax.set_xticks([-(m - 1), 0, m - 1])
            ax.set_yticks([-(m - 1), 0, m - 1])
            ax.tick_params(labelsize=6, length=2)
            if h not in titled:
                ax.set_title(f"head {h + 1}", fontsize=8)
                titled.add(h)
            if h == 0:
                ax.set_ylabel(f"{label}\nΔh", fontsize=7)
            if r == len(tables) - 1:
                ax.set_xlabel("Δw", fontsize=7)
        if table is not None:
            fig.colorbar(image, cax=axes[r, heads]).ax.tick_params(labelsize=6)
        else:
            axes[r, heads].axis("off")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# -- attention similarity and dense head: pictures of whatever kind the registries hold ----------------------------


def attention_weights(model, x) -> list[tuple[str, np.ndarray]]:
    """(label, (heads, queries, keys) array) per block, in model order: the softmax attention weights of the first
    window of the first image of ``x`` (a sliding block: its first token's neighbourhood), as the block's
    similarity kind and relative bias give them (``WindowAttention.weights``)."""
    import torch

    blocks = [(f"stage {i + 1} block {j + 1}", block.attn) for i, stage in enumerate(model.layers)
              for j, block in enumerate(stage.blocks)]
    inputs: dict[int, tuple] = {}
    hooks = [attn.register_forward_pre_hook(lambda module, args, k=k: inputs.setdefault(k, args))
             for k, (_, attn) in enumerate(blocks)]
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(x[:1])
            return [(label, attn.weights(*inputs[k])[0].float().cpu().numpy())
                    for k, (label, attn) in enumerate(blocks)]
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()


def draw_attention(model, x, path: str | Path, title: str | None = None) -> Path:
    """Each head's attention weights in the first window of each block (rows: queries, columns: keys; one row
    of panels per block, the first block of each stage only past 8 blocks). The title names the similarity
    kinds (``model.attention``) with their registry descriptions."""
    plt = _plt()
    rows = attention_weights(model, x)
    if len(rows) > 8:
        rows = [r for r in rows if r[0].endswith("block 1")]
    kinds = {block.attn.similarity for stage in model.layers for block in stage.blocks}
    what = "; ".join(sorted(f"{k.name}: {k.description}" for k in kinds))
    heads = max(w.shape[0] for _, w in rows)
    fig, axes = plt.subplots(len(rows), heads, squeeze=False, dpi=DPI, layout="constrained",
                             figsize=(0.8 + 1.3 * heads, 0.8 + 1.3 * len(rows)))
    for r, (label, weights) in enumerate(rows):
        for h in range(heads):
            ax = axes[r, h]
            ax.set_xticks([])
            ax.set_yticks([])
            if h >= weights.shape[0]:
                ax.axis("off")
                continue
            ax.imshow(weights[h], cmap="magma", vmin=0.0, interpolation="nearest", aspect="auto")
            if r == 0:
                ax.set_title(f"head {h + 1}", fontsize=8)
            if h == 0:
                ax.set_ylabel(f"{label}\nqueries", fontsize=7)
    fig.suptitle(title or f"attention weights, first window\n{what}", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def head_reach(head, in_channels, sizes, seed: int = 0) -> list[np.ndarray]:
    """Per pyramid level, an (h_i, w_i) map of how strongly the logits of the centre pixel of the first level
    depend on each feature token: |d logits / d features| summed over channels and classes, on random features
    (``seed``), the head in eval mode (zeros for a level the head does not read). A linear probe reaches one token
    per level; UPerNet the whole map."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    features = [torch.randn(1, c, *hw, generator=generator, requires_grad=True) for c, hw in zip(in_channels, sizes)]
    logits = head.eval()(features)  # (1, K, H_0, W_0)
    H, W = logits.shape[-2:]
    logits[0, :, H // 2, W // 2].sum().backward()
    return [np.zeros(hw) if f.grad is None else f.grad[0].abs().sum(0).numpy() for f, hw in zip(features, sizes)]


def draw_head_reach(head_cfg, in_channels, sizes, num_classes: int, path: str | Path) -> Path:
    """The head kind's reach (``head_reach``) at each level of a pyramid of ``sizes``, one panel per level; the
    head is built from ``head_cfg`` through its kind, named in the title with its registry description."""
    from swin_lit.models.heads import build_head
    from swin_lit.models.registry import HEADS

    plt = _plt()
    maps = head_reach(build_head(head_cfg, in_channels, num_classes), in_channels, sizes)
    fig, axes = plt.subplots(1, len(maps), squeeze=False, dpi=DPI, layout="constrained",
                             figsize=(0.6 + 2.0 * len(maps), 2.6))
    for i, (ax, reach) in enumerate(zip(axes[0], maps)):
        ax.imshow(reach, cmap="viridis", vmin=0.0, interpolation="nearest")
        ax.set_title(f"level {i} ({reach.shape[0]}x{reach.shape[1]}): {int((reach > 0).sum())} tokens", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"what the centre pixel's logits read: head {head_cfg.kind!r}\n"
                 f"{HEADS[head_cfg.kind].description}", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
