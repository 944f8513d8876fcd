"""The committed MNIST classifier: its files, its accuracy, and its user-facing errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from classifiers import evaluate
from classifiers.convnet import (DEFAULT_CARD, DEFAULT_WEIGHTS, ClassifierError, ConvNet, load_classifier,
                                 sha256_file)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(DEFAULT_CARD.read_text())


def test_committed_weights_match_their_card(card: dict) -> None:
    assert DEFAULT_WEIGHTS.stat().st_size < 2_000_000
    assert sha256_file(DEFAULT_WEIGHTS) == card["sha256"]
    assert card["test_accuracy"] >= 0.99
    assert {"epochs", "seed", "command", "architecture", "trained_at", "torch_version"} <= card.keys()


def test_shapes_and_flat_inputs() -> None:
    model = load_classifier()
    assert isinstance(model, ConvNet) and not model.training
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert model.features(x).shape == (5, 128)
        assert model(x).shape == (5, 10)
        torch.testing.assert_close(model(x.flatten(1)), model(x))


def test_accuracy_on_real_test_images(data_dir: Path) -> None:
    torch.set_num_threads(2)
    assert evaluate.test_accuracy(load_classifier(), data_dir, limit=2000) >= 0.985


def test_missing_weights_raise_a_named_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(ClassifierError, match="nope.pt"):
        load_classifier(missing)


def test_garbage_weights_raise_a_named_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a state dict" * 10)
    with pytest.raises(ClassifierError, match="garbage.pt") as e:
        load_classifier(garbage)
    assert "\n" not in str(e.value)


def test_wrong_shape_weights_raise_a_named_error(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    torch.save({"head.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(ClassifierError, match="wrong.pt") as e:
        load_classifier(wrong)
    assert "\n" not in str(e.value)


def test_evaluate_cli_missing_classifier_exits_2() -> None:
    result = subprocess.run([sys.executable, "-m", "classifiers.evaluate", "--classifier", "/nonexistent"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "/nonexistent" in lines[0]
