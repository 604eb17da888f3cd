"""Pictures of the model's window machinery: the shifted-window attention mask, learned position biases, the
attention weights of each block and what a dense head reads.

The data come from ``swin_lit.models.windows`` (``window_order``, ``attention_mask``, ``window_partition``) with
the shift kind's own grid, roll and region labels (``SHIFTS``), from the model's own relative-bias modules (each
kind's ``offset_image``), from its attention modules (whatever similarity kind they hold:
``WindowAttention.weights``) and from heads built through the head registry; nothing here re-derives the mask
rules or branches on a kind (the mask picture's default kind is the paper's, ``cyclic``).
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


def _window_grid(ax, rows: int, cols: int, window: int, colour: str = "k") -> None:
    for k in range(0, rows + 1, window):
        ax.axhline(k - 0.5, color=colour, lw=1.4)
    for k in range(0, cols + 1, window):
        ax.axvline(k - 0.5, color=colour, lw=1.4)


MASKED, ALLOWED = "#3b3b3b", "#f2f2f2"  # a mask panel's cells: query may not / may attend to key
SHIFTED_LINES = "#c2255c"  # the shifted block's window boundaries on the token map (no region colour)


def region_colours(count: int):
    """The colours of region labels 0..count-1 (tab10's, cycled), as a colormap over -0.5 .. count - 0.5."""
    from matplotlib.colors import ListedColormap

    palette = _plt().get_cmap("tab10").colors
    return ListedColormap([palette[i % len(palette)] for i in range(max(count, 1))])


def mask_data(size: int, window: int, shift: int | None = None, kind: str = "cyclic") -> dict:
    """Numbers behind the mask figure: the shifted block of a size x size map in window x window windows under the
    shift kind ``kind`` (``SHIFTS``; ``shift`` default: the kind's ``stage_shift``), as the model computes it
    (``window_order``, ``ShiftKind.region_labels``, ``attention_mask``).

    Returns ``{"kind", "shift", "offset" (top, left), "roll", "padded" (Hp, Wp) of the shifted grid, "regular" (Hp,
    Wp) of the regular blocks' grid, "tokens" (Hp, Wp): the token (row-major index, size * size for padding) in
    each slot of the shifted grid as the partition reads it, "labels" (Hp, Wp) region labels or None (no region
    mask), "window_labels" (nW, N) or None, "masks" (nW, N, N) bool allowed}``.
    """
    import torch

    from swin_lit.models.registry import SHIFTS
    from swin_lit.models.windows import attention_mask, window_order, window_partition

    if size < 1 or window < 1:
        raise ValueError(f"size and window must be >= 1, got size={size}, window={window}")
    if window > size:
        raise ValueError(
            f"window {window} is larger than the map ({size}); the model would use one {size}x{size} window"
        )
    SHIFTS.check(kind, "shift")
    shift_kind = SHIFTS[kind]
    stage_shift = shift_kind.stage_shift(window)
    shift = stage_shift if shift is None else shift
    if not 0 <= shift < window:
        raise ValueError(f"shift must be in [0, window) = [0, {window}), got {shift}")
    if shift and not stage_shift:
        raise ValueError(f"shift kind {kind!r} has no shifted blocks (its shift is 0), got shift {shift}")
    top, left, Hp, Wp = shift_kind.grid((size, size), window, shift)
    gather, _ = window_order(size, window, shift, kind)  # (nW * N,) slots, windows row-major
    tokens = gather.view(Hp // window, Wp // window, window, window).permute(0, 2, 1, 3).reshape(Hp, Wp)
    labels = shift_kind.region_labels((Hp, Wp), window, shift)
    window_labels = None if labels is None else window_partition(labels[None, :, :, None], window).squeeze(-1)
    mask = attention_mask(size, window, shift, kind)
    n_windows, n = (Hp // window) * (Wp // window), window * window
    allowed = torch.ones(n_windows, n, n, dtype=torch.bool) if mask is None else mask == 0
    return {"kind": kind, "shift": shift, "offset": (top, left), "roll": shift_kind.roll(shift), "padded": (Hp, Wp),
            "regular": tuple(shift_kind.grid((size, size), window, 0)[2:]), "tokens": tokens.numpy(),
            "labels": None if labels is None else labels.numpy(),
            "window_labels": None if window_labels is None else window_labels.numpy(), "masks": allowed.numpy()}


def _shown_windows(rows: int, cols: int) -> list[int]:
    """All windows for small maps; else the four kinds (interior, right edge, bottom edge, corner)."""
    if rows * cols <= 16:
        return list(range(rows * cols))
    return [0, cols - 1, cols * (rows - 1), rows * cols - 1]


def draw_mask(size: int, window: int, path: str | Path, shift: int | None = None, kind: str = "cyclic") -> Path:
    """The shifted-window attention mask of the shift kind ``kind`` like the Swin paper's figure, saved to ``path``
    (``mask_data``: every registered kind draws its own grid, roll and regions).

    Top left: the size x size token map with its regular window grid, and the shifted block's window boundaries
    dashed. Top right: the shifted block's padded grid as the partition reads it (rolled and offset as the kind
    says), coloured by the kind's region labels with each region's label printed (tinted by the tokens' regular
    windows where the kind has no region mask), padding grey. Bottom: for the shifted windows, the N x N masks
    (N = window^2): light = query may attend to key, dark = masked (another region, or padding), with each
    query's and key's region as a coloured strip. A kind without shifted blocks (``none``) shows its regular
    windows and no region.
    """
    plt = _plt()
    from matplotlib.colors import ListedColormap

    from swin_lit.models.registry import SHIFTS

    d = mask_data(size, window, shift, kind)
    shift, masks, labels, tokens = d["shift"], d["masks"], d["labels"], d["tokens"]
    (Hp, Wp), (top, left), roll = d["padded"], d["offset"], d["roll"]
    rows_w, cols_w = Hp // window, Wp // window
    shown = _shown_windows(rows_w, cols_w)
    cols = min(len(shown), 4)
    mask_rows = math.ceil(len(shown) / cols)
    fig = plt.figure(figsize=(8.0, 4.4 + 2.1 * mask_rows), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(1 + mask_rows, 4, height_ratios=[2.0] + [1.0] * mask_rows)
    ax_map, ax_shift = fig.add_subplot(grid[0, 0:2]), fig.add_subplot(grid[0, 2:4])
    count = 0 if labels is None else int(labels.max()) + 1
    colours = region_colours(count)
    tints = ListedColormap(["#dde8f5", "#bcd2ea"])

    # Token map with the regular window partition (windows tinted alternately), token lines thin, and the
    # shifted block's window boundaries dashed: in map coordinates they sit at (roll - top) mod M.
    P, Q = d["regular"]
    rows, cols_idx = np.indices((P, Q))
    ax_map.imshow(((rows // window) + (cols_idx // window)) % 2, cmap=tints, interpolation="nearest")
    if max(P, Q) <= 32:
        for k in range(P + 1):
            ax_map.axhline(k - 0.5, color="white", lw=0.5)
        for k in range(Q + 1):
            ax_map.axvline(k - 0.5, color="white", lw=0.5)
    _window_grid(ax_map, P, Q, window)
    boundary = (roll - top) % window
    if shift and boundary:
        for k in range(boundary, size, window):
            ax_map.axhline(k - 0.5, color=SHIFTED_LINES, lw=1.4, ls="--")
            ax_map.axvline(k - 0.5, color=SHIFTED_LINES, lw=1.4, ls="--")
    if P != size or Q != size:
        ax_map.add_patch(plt.Rectangle((size - 0.5, -0.5), Q - size, P, color="0.6", alpha=0.6))
        ax_map.add_patch(plt.Rectangle((-0.5, size - 0.5), Q, P - size, color="0.6", alpha=0.6))
    ax_map.set_title(
        f"{size}×{size} tokens, {window}×{window} windows" + (f" (padded to {P})" if P != size else "")
        + ("\nsolid: regular windows, dashed: shifted windows" if shift and boundary else ""), fontsize=9)

    # The shifted block's grid as the partition reads it: regions coloured and labelled, padding grey.
    padding = tokens == size * size
    if labels is not None:
        ax_shift.imshow(labels, cmap=colours, vmin=-0.5, vmax=count - 0.5, interpolation="nearest")
    else:
        home = np.where(padding, 0, (tokens // size) // window + (tokens % size) // window) % 2
        ax_shift.imshow(home, cmap=tints, vmin=0, vmax=1, interpolation="nearest")
    if padding.any():
        overlay = np.zeros((Hp, Wp, 4))
        overlay[padding] = (0.6, 0.6, 0.6, 1.0)
        ax_shift.imshow(overlay, interpolation="nearest")
    _window_grid(ax_shift, Hp, Wp, window)
    for label in [] if labels is None else np.unique(labels):
        ys, xs = np.nonzero(labels == label)
        ax_shift.text(xs.mean(), ys.mean(), str(label), ha="center", va="center", fontsize=10, weight="bold",
                      color="white")
    if not shift:
        what = f"shift {kind!r}: no shifted blocks\nevery block uses the regular windows; no region mask"
    else:
        moves = ([f"map rolled by -{roll}"] if roll else []) + ([f"grid offset by ({top}, {left})"] if top or left
                                                               else [])
        regions = f"{count} regions" if labels is not None else "no region mask"
        what = (f"shifted block, shift {kind!r} (s={shift}): " + ", ".join(moves + [regions])
                + f"\n{SHIFTS[kind].description}")
    ax_shift.set_title(what, fontsize=8)
    for ax in (ax_map, ax_shift):
        ax.set_xticks([])
        ax.set_yticks([])

    # Per-window masks.
    axes = np.array([fig.add_subplot(grid[1 + i // cols, i % cols]) for i in range(mask_rows * cols)])
    n = window * window
    for ax, w in zip(axes, shown):
        ax.imshow(masks[w], cmap=ListedColormap([MASKED, ALLOWED]), vmin=0, vmax=1, interpolation="nearest")
        if d["window_labels"] is not None:  # the region of each query / key as coloured strips along the axes
            regions = d["window_labels"][w]
            ax.imshow(regions[None, :], cmap=colours, vmin=-0.5, vmax=count - 0.5,
                      extent=(-0.5, n - 0.5, -0.5, -1.5), interpolation="nearest")
            ax.imshow(regions[:, None], cmap=colours, vmin=-0.5, vmax=count - 0.5,
                      extent=(-1.5, -0.5, n - 0.5, -0.5), interpolation="nearest")
            ax.set_xlim(-1.5, n - 0.5)
            ax.set_ylim(n - 0.5, -1.5)
        r, c = divmod(w, cols_w)
        blocked = int((~masks[w]).sum())
        ax.set_title(f"window ({r},{c}): {blocked}/{n * n} masked", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(shown):]:
        ax.axis("off")
    block = "the shifted block" if shift else "the regular windows (every block)"
    fig.suptitle(f"Shifted-window attention mask, shift {kind!r} (H={size}, M={window}, shift={shift})\n"
                 f"bottom: per-window N×N masks of {block}; rows: queries, columns: keys"
                 + (", strips: their regions" if labels is not None else "") + "; light = attend, dark = masked",
                 fontsize=8)
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
