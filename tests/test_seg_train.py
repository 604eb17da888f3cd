"""``task: segmentation`` end to end: the model, the embedded dense scenes, a run with result.json, an exact
mid-epoch resume, CamVid-layout files, init_from a classification run, the spec's task check, bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers.data import camvid_folder
from helpers.pictures import assert_drawn
from helpers.training import StopAt
from PIL import Image

from swin_lit.cli import main
from swin_lit.config import load_config
from swin_lit.data.classes import DENSE_CLASS_NAMES
from swin_lit.data.synthetic import DISC_CLASSES, SyntheticScenes
from swin_lit.models.config import SwinConfig
from swin_lit.models.head_config import HeadConfig
from swin_lit.models.segmenter import SwinSegmenter, segmenter_flops, segmenter_params
from swin_lit.report.data import load_study
from swin_lit.train.runs import load_trained_model, train

TINY = [
    "task=segmentation", "model.img_size=16", "model.patch_size=2", "model.window_size=4", "model.embed_dim=16",
    "model.depths=[2, 2]", "model.num_heads=[2, 4]", "model.mlp_ratio=2.0", "model.drop_path_rate=0.0",
    "head.channels=16", "data.train_size=96", "data.val_size=32", "data.test_size=32", "data.batch_size=16",
    "data.eval_batch_size=32", "trainer.max_epochs=2", "trainer.checkpoint_every_n_steps=2", "trainer.threads=1",
    "trainer.progress=false", "optim.schedule=poly",
]


def tiny(*extra):
    return load_config(None, TINY + list(extra))


# -- model -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", [HeadConfig(kind="upernet", channels=16, aux_weight=0.4),
                                  HeadConfig(kind="fpn", channels=16, scale_channels=8)])
def test_segmenter_counts_and_any_size(head):
    """Parameter counts from the configs equal the module's; logits come out at the input's size, for the
    training size and for a rectangular one; the aux head's logits only when asked for."""
    cfg = SwinConfig(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 8))
    model = SwinSegmenter(cfg, head, 5).eval()
    counts = segmenter_params(cfg, head, 5)
    assert counts["backbone"] == sum(p.numel() for p in model.backbone.parameters())
    assert counts["head"] == sum(p.numel() for p in model.decode_head.parameters())
    assert counts["aux_head"] == (sum(p.numel() for p in model.aux_head.parameters()) if head.aux else 0)
    assert not any(k.startswith(("backbone.head.", "backbone.norm.")) for k in model.state_dict())
    for size in ((32, 32), (24, 40)):
        with torch.no_grad():
            logits, aux = model(torch.randn(2, 3, *size), aux=True)
        assert logits.shape == (2, 5, *size)
        assert (aux is not None) == head.aux and (aux is None or aux.shape == logits.shape)
    flops = segmenter_flops(cfg, head, 5, (32, 32))
    assert flops["total"] == flops["backbone"] + flops["head"] and flops["head"] > 0


# -- embedded dense scenes ---------------------------------------------------------------------------


def test_dense_scenes_label_the_disc_with_the_scenes_relation():
    """Deterministic per (seed, index); the disc's pixels carry the scene's relation class, the square and the
    distractors their own classes; every class occurs."""
    data = SyntheticScenes(64, 32, 0, "train")
    images, labels = data.render_dense(np.arange(64))
    again_images, again_labels = data.render_dense([5, 9])
    assert torch.equal(again_images, images[[5, 9]]) and torch.equal(again_labels, labels[[5, 9]])
    relation = data.labels()
    for i in range(64):
        disc = set(labels[i].unique().tolist()) - {0, 1, 2}
        assert disc == {DISC_CLASSES + int(relation[i])}, (i, disc)
    assert set(labels.unique().tolist()) == set(range(len(DENSE_CLASS_NAMES)))


# -- runs --------------------------------------------------------------------------------------------


def test_tiny_segmentation_run_end_to_end(tmp_path, capsys):
    args = ["train", "--out", str(tmp_path)] + [a for o in TINY for a in ("--set", o)]
    assert main(args) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    record = json.loads((run_dir / "result.json").read_text())
    assert record["task"] == "segmentation" and record["class_names"] == list(DENSE_CLASS_NAMES)
    for split in ("val", "test"):
        assert 0.0 <= record[split]["miou"] <= 100.0 and 0.0 <= record[split]["aacc"] <= 100.0
    iou = np.array(record["test"]["iou"], dtype=float)
    assert len(iou) == 11 and record["test"]["miou"] == pytest.approx(np.nanmean(iou), abs=1e-3)
    cfg = tiny()
    assert record["params"] == record["params_backbone"] + record["params_head"]
    assert record["params_backbone"] == segmenter_params(cfg.model, cfg.head, 11)["backbone"]
    assert record["flops"] == segmenter_flops(cfg.model, cfg.head, 11, (16, 16))["total"]
    assert [h["epoch"] for h in record["history"]] == [0, 1] and "val_miou" in record["history"][0]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for path in (run_dir / "tensorboard").rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert {"val/miou", "val/aacc", "val/loss", "train/loss", "hp/val_miou", "hp/test_miou"} <= tags
    model = load_trained_model(run_dir)
    assert isinstance(model, SwinSegmenter)


def test_segmentation_resume_mid_epoch_equals_the_uninterrupted_run(tmp_path):
    cfg = tiny()  # 6 batches per epoch, last.ckpt every 2 steps
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, tmp_path, callbacks=[StopAt(9)])
    _, record = train(cfg, tmp_path)
    _, uninterrupted = train(cfg, tmp_path / "reference")
    assert record["history"] == uninterrupted["history"]
    assert record["val"] == uninterrupted["val"] and record["test"] == uninterrupted["test"]


def test_init_from_a_classification_run_copies_the_backbone(tmp_path):
    cls = load_config(None, [o for o in TINY if not o.startswith(("task=", "head.", "optim.schedule"))]
                      + ["trainer.max_epochs=1", "data.train_size=32"])
    cls_dir, _ = train(cls, tmp_path / "cls")
    seg = tiny("trainer.max_epochs=1", f"init_from={cls_dir}", "optim.lr=1e-12", "optim.warmup_lr=1e-12",
               "optim.min_lr=1e-12", "data.train_size=16")
    seg_dir, _ = train(seg, tmp_path / "seg")
    source, target = load_trained_model(cls_dir), load_trained_model(seg_dir)
    src = source.state_dict()
    got = target.backbone.state_dict()
    shared = [k for k in got if not k.startswith(("norm0", "norm1"))]
    assert shared and set(shared) <= set(src)
    for k in shared:  # learning rate 1e-12: the copied weights are where init_from put them
        assert torch.allclose(got[k].float(), src[k].float(), atol=1e-6), k


# -- real-data layout ----------------------------------------------------------------------------------


def test_camvid_layout_run_with_augmentation(tmp_path, capsys):
    """Rectangular CamVid-layout images (20 x 24): training on augmented 16 x 16 crops, evaluation on whole
    images at their own size; 11 classes from the layout."""
    root = camvid_folder(tmp_path / "camvid")
    cfg = tiny("data.source=camvid", f"data.root={root}", "data.augment.crop=[16, 16]", "data.batch_size=4",
               "trainer.max_epochs=1", "data.loader=memory")
    assert cfg.model.num_classes == 11
    run_dir, record = train(cfg, tmp_path / "runs")
    assert len(record["test"]["iou"]) == 11 and record["flops_size"] == [20, 24]
    assert record["class_names"][0] == "sky"
    # streamed (the default for the layout): the same classes; a stream does not open its images to learn their
    # sizes, so FLOPs are counted at the crop
    streamed = tiny("data.source=camvid", f"data.root={root}", "data.augment.crop=[16, 16]", "data.batch_size=4",
                    "trainer.max_epochs=1")
    assert streamed.data.loader == "stream"
    _, record = train(streamed, tmp_path / "runs")
    assert len(record["test"]["iou"]) == 11 and record["flops_size"] == [16, 16]


@pytest.mark.parametrize("loader", ["memory", "stream"])
@pytest.mark.parametrize("case", ["bad_label", "missing_label", "size"])
def test_bad_segmentation_data_fails_with_exit_2(tmp_path, capsys, case, loader):
    """A bad file is one line naming it, exit 2: the memory loader reads every file before any work (no run
    folder); a stream reads headers when it lists the layout and label values when a sample is drawn, so a
    bad label value may stop a run that has started (resumable once the file is fixed: test_stream_train)."""
    root = camvid_folder(tmp_path / "camvid", bad_value=40 if case == "bad_label" else None)
    if case == "missing_label":
        (root / "trainannot" / "3.png").unlink()
    if case == "size":
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8), mode="L").save(root / "trainannot" / "1.png")
    args = ["train", "--out", str(tmp_path / "runs")] + [a for o in TINY for a in ("--set", o)]
    args += ["--set", "data.source=camvid", "--set", f"data.root={root}", "--set", "data.augment.crop=[16, 16]",
             "--set", f"data.loader={loader}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    expected = {"bad_label": ["2.png", "40"], "missing_label": ["3.png"], "size": ["1.png"]}[case]
    assert all(word in err for word in expected), err
    if loader == "memory":
        assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("override,named", [
    (["task=segmentation", "data.source=cifar", "data.root=/x"], "data.source"),
    (["data.source=camvid", "data.root=/x"], "data.source"),
    (["head.kind=fpn"], "head"),
    (["task=segmentation", "model.num_classes=11", "data.source=camvid", "data.root=/x", "data.augment.crop=[8, 8]"],
     "data.augment.crop"),
    (["task=segmentation", "data.augment.hflip=0.5", "data.augment.crop=[32, 32]"], "data.augment"),
    (["task=segmentation", "optim.mixup_alpha=0.8"], "optim"),
    (["trainer.inference=slide"], "trainer.inference"),
])
def test_impossible_task_combinations_fail_with_exit_2(tmp_path, capsys, override, named):
    args = ["train", "--out", str(tmp_path), "--print-config"] + [a for o in override for a in ("--set", o)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err


def test_a_segmentation_spec_must_name_segmentation_metrics(tmp_path):
    from swin_lit.ablate.spec import load_plan
    from swin_lit.typed import ConfigError

    base = tmp_path / "seg.yaml"
    base.write_text("task: segmentation\nmodel: {img_size: 16, patch_size: 2, window_size: 4}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: s\nbase: {base}\nvariants: {{a: {{}}}}\n")
    with pytest.raises(ConfigError, match="objective: 'test.top1' is not reported by task 'segmentation'"):
        load_plan(spec)
    spec.write_text(f"name: s\nbase: {base}\nvariants: {{a: {{}}}}\nobjective: test.miou\n"
                    "metrics: [test.miou, test.aacc, test.loss]\n")
    plan = load_plan(spec)
    assert plan.cells[0].config.task == "segmentation"
    spec.write_text(spec.read_text() + "transfer: {targets: ['16:8']}\n")
    moved = [c for c in load_plan(spec).cells if c.kind == "transfer"]  # one per trained cell, the window moved
    assert [(c.transfer["img_size"], c.transfer["window_size"], c.transfer["method"]) for c in moved] == \
        [(16, 8, "bicubic")]
    spec.write_text(spec.read_text().replace("'16:8'", "'15:8'"))
    with pytest.raises(ConfigError, match="transfer.targets: target 15:8"):  # the patch (2) does not divide 15
        load_plan(spec)


def test_a_segmentation_study_runs_and_reports_with_predictions(tmp_path):
    """A real driver on a segmentation spec: the trials' intermediate values are the epochs' val mIoU, the report
    compares mIoU and aAcc and draws each variant's test predictions beside the ground truth."""
    import yaml
    from helpers.studies import ablate, trials

    from swin_lit.report.build import build_report

    base = tmp_path / "seg.yaml"
    config = {}
    for o in TINY:
        key, value = o.split("=", 1)
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    config["data"].update(train_size=32, val_size=16, test_size=16)
    base.write_text(yaml.safe_dump(config))
    spec = tmp_path / "segstudy.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "segstudy", "base": str(base), "variants": {"shifted": {}, "w/o shifting": {"model.shift": "none"}},
        "seeds": [0], "metrics": ["test.miou", "test.aacc"], "objective": "test.miou",
        "paper": {"table": "Swin V1 Table 4", "model": "Swin-T + UperNet", "dataset": "ADE20K",
                  "rows": {"shifted": {"miou": 46.1}, "w/o shifting": {"miou": 43.3}}},
        "transfer": {"targets": ["16:8"]}}))  # the test images segmented with window 8 (no fine-tuning)
    out = tmp_path / "segstudy"
    r = ablate(spec, out, tmp_path / "marker", "--workers", "1")
    assert r.returncode == 0, r.stderr
    done = [t for t in trials(out, "segstudy") if t.state.name == "COMPLETE"]
    ts = [t for t in done if t.user_attrs["kind"] == "train"]
    moved = [t for t in done if t.user_attrs["kind"] == "transfer"]
    assert len(ts) == 2 and len(moved) == 2
    for t in moved:  # the trial's value is the moved model's test mIoU
        assert t.value == t.user_attrs["result"]["miou"] and 0.0 <= t.value <= 100.0
        assert t.user_attrs["result"]["miou_ft"] is None
    for t in ts:
        history = t.user_attrs["result"]["history"]
        assert t.intermediate_values == {h["epoch"]: h["val_miou"] for h in history}
        assert t.value == t.user_attrs["result"]["test"]["miou"]
    folder = build_report(out)
    md = (folder / "report.md").read_text()
    assert "### test.miou" in md and "### test.aacc" in md and "top1" not in md and "top-1" not in md
    assert "Transfer (Swin V2 Table 1 layout)" in md and "Δ mIoU [95% CI]" in md and "chance" not in md
    assert load_study(out).transfer_chance is None  # mIoU has no chance level: no row, line or legend entry
    summary = pd.read_csv(folder / "transfer.csv")
    by_variant = {t.user_attrs["variant"]: t.value for t in moved}
    for _, r in summary.iterrows():  # the table's numbers are the trials' mIoU (one seed: the mean is the value)
        assert r["miou mean"] == pytest.approx(by_variant[r["variant"]]) and r["window_size"] == 8
    assert "Swin V1 Table 4, Swin-T + UperNet, ADE20K" in md
    assert assert_drawn(folder / "figures" / "predictions.png")[0] > 300 and "predictions.png" in md
    # a clone has the study but not its run folders: a rebuilt report keeps the prediction figure it cannot redraw
    figure = (folder / "figures" / "predictions.png").read_bytes()
    (folder / "figures" / "stale.png").write_bytes(figure)  # an earlier figure the report no longer draws
    shutil.rmtree(out / "runs")
    folder = build_report(out)
    assert (folder / "figures" / "predictions.png").read_bytes() == figure
    assert "predictions.png" in (folder / "report.md").read_text()
    assert not (folder / "figures" / "stale.png").exists()


def test_transfer_a_segmentation_run_to_a_larger_window(tmp_path, capsys):
    """Moved to its own crop and window, a segmentation run scores exactly its own test mIoU and aAcc (the moved
    model and the transfer's evaluation are the run's); moved to window 8 (stage 0's table resized bicubically),
    evaluated and fine-tuned one epoch at that window; the CLI prints mIoU, writes transfer.json, and a target the
    patch does not divide is one line with exit 2."""
    from swin_lit.models.transfer import initialise_from, transfer_segmenter
    from swin_lit.train.transfer import transfer_cell

    run_dir, record = train(tiny("trainer.max_epochs=1"), tmp_path / "runs")
    same = transfer_cell(run_dir, 16, 4, "bicubic")
    assert same["miou"] == pytest.approx(record["test"]["miou"], abs=1e-4)
    assert same["aacc"] == pytest.approx(record["test"]["aacc"], abs=1e-4)
    model = load_trained_model(run_dir)
    wider = transfer_segmenter(model, 16, 8, "bicubic")
    assert wider.cfg.window_size == 8 and wider.cfg.stages()[0].window == 8
    assert torch.equal(wider.decode_head.state_dict()["classifier.1.weight"],
                       model.decode_head.state_dict()["classifier.1.weight"])
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(wider(x), model(x))  # stage 0 now attends over all 8x8 tokens at once
    fresh = SwinSegmenter(wider.cfg, model.head_cfg, model.num_classes)  # what a fine-tune run starts from
    initialise_from(fresh, model)
    for a, b in zip(fresh.state_dict().values(), wider.state_dict().values()):
        assert torch.equal(a, b)  # backbone moved by the recipe, heads kept: the same as transfer_segmenter's
    moved = transfer_cell(run_dir, (16, 16), 8, "bicubic", finetune_epochs=1, out=tmp_path / "ft")
    assert 0.0 <= moved["miou"] <= 100.0 and 0.0 <= moved["aacc"] <= 100.0
    ft_cfg = yaml.safe_load((Path(moved["ft_run_dir"]) / "config.yaml").read_text())
    assert ft_cfg["model"]["window_size"] == 8 and ft_cfg["task"] == "segmentation"
    assert json.loads((Path(moved["ft_run_dir"]) / "result.json").read_text())["test"]["miou"] == moved["miou_ft"]
    capsys.readouterr()
    assert main(["transfer", str(run_dir), "--to", "16x16:8", "--method", "bicubic"]) == 0
    out = capsys.readouterr().out
    assert "miou" in out.splitlines()[0] and "16x16:8" in out
    rows = json.loads((run_dir / "transfer.json").read_text())["rows"]
    assert rows[0]["miou"] == pytest.approx(moved["miou"]) and rows[0]["miou_ft"] is None
    assert main(["transfer", str(run_dir), "--to", "15:8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "target 15:8" in err[0]
