"""Tiny real training runs: the config overrides, a simulated crash, and a fake training clock."""

from __future__ import annotations

import lightning.pytorch as pl

from helpers.clock import FakeClock

# A tiny but real run: 16 px, 8x8 tokens, 2 stages, a few hundred images.
TINY = [
    "model.img_size=16", "model.embed_dim=16", "model.depths=[2, 2]", "model.num_heads=[2, 4]",
    "model.mlp_ratio=2.0", "data.train_size=192", "data.val_size=64", "data.test_size=64",
    "data.batch_size=32", "trainer.max_epochs=2", "trainer.checkpoint_every_n_steps=2", "trainer.threads=1",
    "trainer.progress=false",
]


class StopAt(pl.Callback):
    """Simulates a crash in the middle of an epoch."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


class Ticks(pl.Callback):
    """Moves a FakeClock on by a fixed time per training batch and per validation / test batch, so that a run's
    measured training time is known exactly: ``train`` seconds per training batch and nothing else."""

    def __init__(self, clock: FakeClock, train: float = 1.0, other: float = 100.0) -> None:
        self.clock, self.train, self.other = clock, train, other

    def on_train_batch_end(self, *args):
        self.clock.advance(self.train)

    def on_validation_batch_end(self, *args):
        self.clock.advance(self.other)

    def on_test_batch_end(self, *args):
        self.clock.advance(self.other)
