"""Shared fixtures: real MNIST, found the way the harness finds it, and what the trainers take.

MNIST comes from `--data-dir DIR` (a pytest option here), else `$HARNESS_DATA_DIR`, else the
harness's cache (`HARNESS_CACHE_DIR`, default ~/.cache/gan-harness/mnist), downloaded there and
checked against its SHA-256 on first use: `harness.data.resolve_data_dir`, as for every command.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

# Tiny models: one thread is fastest, and immune to a busy second core (the trials do the same).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def pytest_terminal_summary(terminalreporter) -> None:
    """The CPU the run was on, and whether the bit-level assertions ran there (tests/follows.py),
    as the run's last line but one (also under -q)."""
    from tests.follows import machine_line
    terminalreporter.write_line(machine_line())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--data-dir", default=None,
                     help="MNIST folder for the tests (default: $HARNESS_DATA_DIR, else the harness's "
                          "download cache)")


@pytest.fixture(scope="session")
def data_dir(request: pytest.FixtureRequest) -> Path:
    """The folder with MNIST's four IDX files. Without the data and without internet the whole
    run stops with one line naming the fix, rather than every test failing on its own."""
    from harness.data import DataError, resolve_data_dir

    try:
        return resolve_data_dir(request.config.getoption("--data-dir"))
    except DataError as e:
        pytest.exit(f"the tests need MNIST: {e}", returncode=2)  # DataError's message names the fix


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


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of its own (root only): remount it with `small_disk.size(...)`."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)],
                                           capture_output=True).returncode:
        pytest.skip("mounting a small file system needs root")

    class Disk:
        path = folder

        @staticmethod
        def size(size: str) -> None:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)

        @staticmethod
        def fill() -> None:
            subprocess.run(["dd", "if=/dev/zero", f"of={folder / 'filler'}", "bs=16k"], capture_output=True)
    yield Disk
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)
