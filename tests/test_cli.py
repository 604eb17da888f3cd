"""One error path: every command turns bad input (a bad data root, a bad spec or config, a bad storage URL, a
missing database driver) into exit code 2 and one line on stderr, as real ``swin-lit`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "postgresql+psycopg2://nobody@127.0.0.1:9/nodb"  # loopback, a closed port: refused at once
TINY = {"model.embed_dim": 8, "model.depths": [2], "model.num_heads": [2], "data.train_size": 64,
        "data.val_size": 16, "data.test_size": 16}


def _spec(folder: Path, name: str, **fields) -> Path:
    spec = {"name": name, "base": str(ROOT / "configs" / "default.yaml"), "budget": dict(TINY),
            "variants": {"a": {}}, **fields}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _run_folder(folder: Path, data_root: Path) -> Path:
    """A run folder as training leaves it (config + best checkpoint), its config pointing at ``data_root``."""
    import torch

    from swin_lit.config import load_config
    from swin_lit.models import SwinTransformer

    overrides = [f"{k}={v}" for k, v in TINY.items()] + ["model.patch_size=4", "model.num_classes=2",
                                                          "data.source=folder", f"data.root={data_root}"]
    cfg = load_config(None, overrides)
    run = folder / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    state = {f"model.{k}": v for k, v in SwinTransformer(cfg.model).state_dict().items()}
    torch.save({"state_dict": state}, run / "checkpoints" / "best.ckpt")
    return run


def _blocked_driver(folder: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes ``import psycopg2`` fail as when the driver is not installed."""
    block = folder / "no-psycopg2" / "psycopg2"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'psycopg2'\", name='psycopg2')\n")
    return block.parent


def test_every_command_turns_bad_input_into_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "no-such-data"
    # the class count given, so that nothing but the check before any work reads the folder
    bad_data = _spec(tmp_path, "data", budget={**TINY, "data.source": "folder", "data.root": str(missing),
                                               "model.num_classes": 2})
    bad_spec = _spec(tmp_path, "spec", sedes=[0])
    good = _spec(tmp_path, "good")
    foreign = tmp_path / "foreign.log"
    foreign.write_text("this is not an optuna journal\n")
    run = _run_folder(tmp_path, missing)
    out = tmp_path / "out"
    cases = {
        # command: bad data root / bad spec or config / bad storage
        "train data": (["train", "--set", "data.source=folder", "--set", f"data.root={missing}"], str(missing)),
        "train config": (["train", "--set", "model.shfit=none"], "model.shfit: unknown key"),
        "ablate data": (["ablate", str(bad_data), "--out", str(out)], str(missing)),
        "ablate spec": (["ablate", str(bad_spec), "--out", str(out)], "sedes: unknown key"),
        "ablate storage": (["ablate", str(good), "--out", str(out), "--storage", UNREACHABLE],
                           "cannot open storage postgresql+psycopg2://nobody@127.0.0.1:9/nodb"),
        "ablate dry-run data": (["ablate", str(bad_data), "--dry-run"], f"data.root: data folder {missing}"),
        "ablate dry-run storage": (["ablate", str(good), "--dry-run", "--storage", UNREACHABLE], "cannot open storage"),
        "report storage": (["report", UNREACHABLE], "cannot open storage"),
        "report folder": (["report", str(tmp_path / "no-study")], "no study at"),
        "report journal": (["report", str(foreign)], "holds no study"),
        "transfer data": (["transfer", str(run), "--to", "32:4"], str(missing)),
        "transfer target": (["transfer", str(run), "--to", "32:x"], "expected IMG:WINDOW"),
        "transfer run": (["transfer", str(tmp_path), "--to", "32:4"], "not a run folder"),
        "viz run": (["viz", "bias", str(tmp_path / "nothing")], "no run folder"),
        "models preset": (["models", "--preset", "swin_xxl"], "unknown preset"),
    }
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {name: subprocess.Popen([sys.executable, "-m", "swin_lit.cli", *argv], cwd=tmp_path, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (argv, _) in cases.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        expected = cases[name][1]
        lines = err.strip().splitlines()
        assert proc.returncode == 2, (name, err)
        assert len(lines) == 1 and expected in lines[0], (name, err)
        assert lines[0].startswith(f"swin-lit {cases[name][0][0]}: error: "), (name, err)
    assert not out.exists()  # nothing was created by any rejected command


def test_a_postgresql_url_without_its_driver_says_how_to_install_it(tmp_path):
    pytest.importorskip("sqlalchemy")
    env = {**os.environ, "PYTHONPATH": str(_blocked_driver(tmp_path)), "PYTHONUNBUFFERED": "1"}
    good = _spec(tmp_path, "good")
    for argv in (["ablate", str(good), "--out", str(tmp_path / "out"), "--storage", UNREACHABLE],
                 ["report", UNREACHABLE]):
        r = subprocess.run([sys.executable, "-m", "swin_lit.cli", *argv], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert "pip install 'swin-lit[postgres]'" in lines[0] and "psycopg2" in lines[0]
