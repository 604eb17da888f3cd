import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path | None:
    """The official parity fixtures: $SWIN_LIT_FIXTURES, else ../shared/fixtures beside the repo."""
    env = os.environ.get("SWIN_LIT_FIXTURES")
    for candidate in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "fixtures"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture
def official_fixture():
    """Load one fixture file by name; skip (saying why) only where the fixtures folder is absent."""
    folder = fixtures_dir()
    if folder is None:
        pytest.skip("official fixtures not found: set SWIN_LIT_FIXTURES or place ../shared/fixtures beside the repo")

    def load(name: str) -> dict:
        return torch.load(folder / f"{name}.pt", weights_only=True)

    return load


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
