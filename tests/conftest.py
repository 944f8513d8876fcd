"""Shared fixtures: the real MNIST folder (HARNESS_DATA_DIR, else ../shared/data/mnist)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny models: one thread is fastest, and immune to a busy second core (the trials do the same).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path:
    return Path(os.environ.get("HARNESS_DATA_DIR", REPO.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    folder = mnist_dir()
    if not (folder / "train-images-idx3-ubyte.gz").exists() and not (folder / "train-images-idx3-ubyte").exists():
        pytest.fail(f"real MNIST not found in {folder}: set HARNESS_DATA_DIR")
    return folder


@pytest.fixture(scope="session")
def data(data_dir) -> torch.Tensor:
    """The first 1280 training images as the trainers take them: [1280, 1024] in [-1, 1]."""
    from harness.data import gan_training_set
    return gan_training_set(data_dir, 1280, "cpu")


@pytest.fixture(scope="session")
def scorer(data_dir):
    """The committed ConvNet's scorer."""
    from harness.metrics import Scorer
    return Scorer(None, data_dir)
