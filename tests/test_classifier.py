"""The committed MNIST classifier: its files, its accuracy, and its user-facing errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from classifiers import evaluate, train
from classifiers.convnet import DEFAULT_CARD, DEFAULT_WEIGHTS, ClassifierError, ConvNet, load_classifier, sha256_file

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


# --- classifiers.train: a new file by default, never silently over the shipped weights ----------

def test_card_records_placeholders_not_local_paths(card: dict) -> None:
    assert card["command"].startswith("python -m classifiers.train --data-dir DATA_DIR")
    assert "/" not in card["command"]
    assert "3 convolutional layers" in card["layers"] and "linear head" in card["layers"]
    assert train.card_command(["--data-dir", "/home/me/mnist", "--epochs", "2", "--out=/tmp/x.pt"]) == \
        "python -m classifiers.train --data-dir DATA_DIR --epochs 2 --out=OUT"


@pytest.mark.parametrize("target, words", [("shipped", "shipped classifier"), ("other", "exists")])
def test_train_refuses_an_existing_out_before_training(tmp_path, capsys, target, words) -> None:
    out = DEFAULT_WEIGHTS if target == "shipped" else tmp_path / "mine.pt"
    if target == "other":
        out.write_bytes(b"earlier weights")
    before = out.read_bytes()
    assert train.main(["--out", str(out), "--data-dir", str(tmp_path / "no-data-here")]) == 2  # no data read
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "--overwrite" in err
    assert out.read_bytes() == before


def test_train_writes_a_new_file_by_default(tmp_path, monkeypatch, data_dir) -> None:
    """The whole command on a slice of MNIST (so it takes seconds): new weights and card in the
    current folder, the card's command with placeholders, the shipped weights untouched."""
    shipped = sha256_file(DEFAULT_WEIGHTS)
    real_load = train.load_mnist

    def small_mnist(split, folder):
        m = real_load(split, folder)
        return type(m)(images=m.images[:512], labels=m.labels[:512])

    monkeypatch.setattr(train, "load_mnist", small_mnist)
    monkeypatch.chdir(tmp_path)
    assert train.main(["--data-dir", str(data_dir), "--epochs", "1", "--threads", "1"]) == 0
    [weights] = tmp_path.glob("mnist_convnet-*.pt")
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["sha256"] == sha256_file(weights) != shipped
    assert card["command"] == "python -m classifiers.train --data-dir DATA_DIR --epochs 1 --threads 1"
    assert card["layers"] == train.LAYERS
    assert isinstance(load_classifier(weights), ConvNet)
    assert sha256_file(DEFAULT_WEIGHTS) == shipped
    # and again into the same file: refused without --overwrite, done with it
    assert train.main(["--data-dir", str(data_dir), "--epochs", "1", "--out", weights.name]) == 2
    assert train.main(["--data-dir", str(data_dir), "--epochs", "1", "--out", weights.name, "--overwrite"]) == 0
