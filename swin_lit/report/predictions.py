"""The prediction figure of a segmentation study: for a few test images, the image, its ground truth and each
variant's prediction side by side, in one fixed class palette with a legend (ignored pixels black).

Each variant is shown by its trained model of the lowest seed that finished, loaded from its run folder (the
study's ``run_dir`` attrs, relative to the study folder) and run on whole test images as the test loop runs them.
Run folders that are gone (a study read from a database on another machine) leave the figure out, with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swin_lit.report import captions
from swin_lit.report.data import StudyData
from swin_lit.report.fmt import short_label

IGNORED_COLOUR = (0.0, 0.0, 0.0)


def palette(num_classes: int) -> np.ndarray:
    """(K, 3) colours in [0, 1], fixed per class index: matplotlib's tab20, then tab20b, then a hue wheel."""
    import matplotlib

    colours = [matplotlib.colormaps["tab20"](i)[:3] for i in range(20)]
    colours += [matplotlib.colormaps["tab20b"](i)[:3] for i in range(20)]
    if num_classes > len(colours):
        import colorsys

        extra = num_classes - len(colours)
        colours += [colorsys.hsv_to_rgb(i / extra, 0.65, 0.9) for i in range(extra)]
    return np.array(colours[:num_classes], dtype=float)


def colourise(labels: np.ndarray, colours: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) colours; the ignore label black."""
    out = np.zeros((*labels.shape, 3), dtype=float)
    valid = labels != ignore_index
    out[valid] = colours[np.clip(labels[valid], 0, len(colours) - 1)]
    out[~valid] = IGNORED_COLOUR
    return out


def _runs_to_show(data: StudyData) -> dict[str, Path]:
    """Each variant's run folder of its lowest finished seed (only those whose best checkpoint is there)."""
    out = {}
    if data.runs.empty or data.folder is None:
        return out
    for variant in data.variants:
        rows = data.runs[data.runs["variant"] == variant].sort_values("seed")
        for run_dir in rows["run_dir"].dropna():
            path = Path(data.folder) / str(run_dir)
            if (path / "checkpoints" / "best.ckpt").is_file():
                out[variant] = path
                break
    return out


def prediction_figure(data: StudyData, path: Path, images: int = 4) -> tuple[Path | None, str]:
    """Draw the figure into ``path``; returns (path or None, why it was left out)."""
    if not data.task_facts.dense:
        return None, captions.PREDICTIONS_NOT_DENSE.fill(task=data.task)
    runs = _runs_to_show(data)
    if not runs:
        return None, captions.PREDICTIONS_NO_RUN.fill()
    import torch

    from swin_lit.models.seg_inference import segment
    from swin_lit.train.runs import build_datamodule, load_run_config, load_trained_model

    first = next(iter(runs.values()))
    cfg = load_run_config(first)
    dm = build_datamodule(cfg)
    dm.setup()
    split = dm.splits["test"]
    count = min(images, len(split))
    inputs = dm.dataset("test").__getitems__(list(range(count)))[0] if split.size is not None else None
    predictions = {}
    for variant, run_dir in runs.items():
        model = load_trained_model(run_dir)
        t = load_run_config(run_dir).trainer  # each run's own inference (whole or slide), as its scores were
        with torch.inference_mode():
            if inputs is not None:
                predictions[variant] = segment(model, inputs, t.inference, t.slide_stride).argmax(1).numpy()
            else:
                ds = dm.dataset("test")
                predictions[variant] = [segment(model, ds.__getitems__([i])[0], t.inference, t.slide_stride)
                                        .argmax(1)[0].numpy() for i in range(count)]
    colours = palette(dm.num_classes)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    columns = 2 + len(predictions)
    fig, axes = plt.subplots(count, columns, figsize=(1.7 * columns, 1.7 * count + 0.9), squeeze=False,
                             layout="constrained")
    titles = ["image", "ground truth", *(short_label(v) for v in predictions)]
    for i in range(count):
        panels = [split.image(i) / 255.0, colourise(split.label(i), colours),
                  *(colourise(np.asarray(p[i]), colours) for p in predictions.values())]
        for j, (ax, panel) in enumerate(zip(axes[i], panels)):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=7)
    handles = [Patch(color=colours[k], label=name) for k, name in enumerate(dm.class_names)]
    handles.append(Patch(color=IGNORED_COLOUR, label="ignored"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)), fontsize=6, frameon=False)
    fig.suptitle(captions.PREDICTIONS_TITLE.fill(study=data.name), fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path, ""
