"""Check the classifier: its accuracy on the 10,000 MNIST test images, and its card.

    python -m classifiers.evaluate --data-dir DIR [--classifier PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from classifiers.convnet import DEFAULT_WEIGHTS, ClassifierError, ConvNet, load_classifier, predict_logits, sha256_file
from harness.data import DataError, load_mnist, to_tensor32
from harness.errors import report


def test_accuracy(model: ConvNet, data_dir: str | Path | None, limit: int | None = None) -> float:
    """Fraction of the MNIST test images (the first `limit` of them, or all) that `model` gets right."""
    test_set = load_mnist("test", data_dir)
    images, labels = test_set.images[:limit], torch.from_numpy(test_set.labels[:limit])
    predictions = predict_logits(model.eval(), to_tensor32(images)).argmax(1)
    return (predictions == labels).float().mean().item()


test_accuracy.__test__ = False  # a library function, not a pytest test


def card_warning(weights: Path, digest: str) -> str | None:
    """Why the card next to `weights` disagrees with it, or None if it agrees or is absent."""
    card_path = weights.with_suffix(".json")
    if not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as e:
        return f"card {card_path} cannot be read ({e})"
    if card.get("sha256") != digest:
        return (f"{weights} has SHA-256 {digest[:12]}... but its card {card_path} says "
                f"{str(card.get('sha256'))[:12]}...: the weights were changed after training")
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m classifiers.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="folder with MNIST's four IDX files "
                   "(default: $HARNESS_DATA_DIR, else the download cache)")
    p.add_argument("--classifier", type=Path, default=DEFAULT_WEIGHTS, help="weights file (default: the committed one)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    try:
        model = load_classifier(args.classifier)
        accuracy = test_accuracy(model, args.data_dir)
    except (ClassifierError, DataError) as e:
        return report(e)
    digest = sha256_file(args.classifier)
    correct = round(accuracy * 10000)
    print(f"test accuracy: {accuracy:.2%} ({correct}/10000) weights {args.classifier} sha256 {digest}")
    warning = card_warning(args.classifier, digest)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
