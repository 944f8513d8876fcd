"""Train the MNIST ConvNet on the whole training set and write its weights and card.

    python -m classifiers.train --data-dir DIR [--epochs N] [--seed S] [--threads T] [--out PATH] [--overwrite]

The weights go to a NEW file, `mnist_convnet-<UTC time>.pt` in the current folder unless `--out`
says otherwise, with its card (`.json`) beside it; score with them by `--classifier PATH`. An
existing file, above all the shipped `classifiers/mnist_convnet.pt` whose SHA-256 every result row
records, is replaced only with `--overwrite`: otherwise a resumed sweep could mix the scores of
two classifiers.

Deterministic for a seed (and thread count) on a given machine: the seed sets the initial weights, and a
`torch.Generator` seeded from it draws the data order and the random shifts.
"""
from __future__ import annotations

import argparse
import datetime
import io
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from classifiers.convnet import ARCHITECTURE, DEFAULT_WEIGHTS, ConvNet, predict_logits, sha256_file
from harness.atomic import write_atomic
from harness.data import DataError, load_mnist, to_tensor32
from harness.errors import HarnessError, report
from harness.strict_json import dumps


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image [N, 1, H, W] by up to `max_shift` pixels each way, filling with -1."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, :, None]  # [N, H, 1]
    cols = (dx + torch.arange(w))[:, None, :]  # [N, 1, W]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


def train(model: ConvNet, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
          lr: float, max_shift: int, generator: torch.Generator) -> None:
    """Adam with a cosine learning-rate decay to zero, one step per minibatch."""
    steps = epochs * (len(x) // batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        batches = order[: len(order) // batch_size * batch_size].split(batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=True)
        for idx in bar:
            xb = random_shift(x[idx], max_shift, generator) if max_shift else x[idx]
            loss = F.cross_entropy(model(xb), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)


# What the paper's "regular 3-layer ConvNet" is here (the card says it; see classifiers/convnet.py).
LAYERS = "3 convolutional layers (the paper's '3-layer ConvNet') and a linear head to the 10 classes"
# Arguments whose values are local paths: the card's command shows a placeholder instead.
PLACEHOLDERS = {"--data-dir": "DATA_DIR", "--out": "OUT"}


def default_out() -> Path:
    """A new weights file in the current folder, named by the time: mnist_convnet-20261125-193111.pt."""
    return Path(f"mnist_convnet-{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}.pt")


def card_command(argv: list[str]) -> str:
    """The training command for the card, local paths replaced by placeholders (--data-dir DATA_DIR)."""
    words, it = [], iter(argv)
    for word in it:
        name, eq, _ = word.partition("=")
        if name in PLACEHOLDERS:
            words.append(f"{name}={PLACEHOLDERS[name]}" if eq else name)
            if not eq:
                next(it, None)
                words.append(PLACEHOLDERS[name])
        else:
            words.append(word)
    return f"python -m classifiers.train {shlex.join(words)}".strip()


def refuse_overwrite(out: Path) -> HarnessError | None:
    """Why writing `out` (and its card) needs --overwrite, or None if both are new files."""
    taken = [p for p in (out, out.with_suffix(".json")) if p.exists()]
    if not taken:
        return None
    if out.exists() and out.resolve() == DEFAULT_WEIGHTS.resolve():
        return HarnessError(str(out), "is the shipped classifier, whose SHA-256 every result row records",
                            "leave out --out to write a new file (then score with --classifier PATH), "
                            "or pass --overwrite to replace it")
    return HarnessError(str(taken[0]), "exists", "pass another --out, or --overwrite to replace it")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m classifiers.train", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="folder with MNIST's four IDX files "
                   "(default: $HARNESS_DATA_DIR, else the download cache)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--max-shift", type=int, default=2, help="random translation in pixels (0: none)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (1 is faster on a busy machine)")
    p.add_argument("--out", type=Path, default=None, help="weights file, the card goes next to it (.json) "
                   "(default: mnist_convnet-<UTC time>.pt in the current folder, a new file)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out and its card "
                   f"(needed to replace the shipped {DEFAULT_WEIGHTS.name})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    out: Path = args.out or default_out()
    refusal = None if args.overwrite else refuse_overwrite(out)
    if refusal:  # before minutes of training, not after
        return report(refusal)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    try:
        train_set, test_set = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    except DataError as e:
        return report(e)

    model = ConvNet()
    x, y = to_tensor32(train_set.images), torch.from_numpy(train_set.labels)
    start = time.time()
    train(model, x, y, args.epochs, args.batch_size, args.lr, args.max_shift, generator)
    minutes = (time.time() - start) / 60

    model.eval()
    predictions = predict_logits(model, to_tensor32(test_set.images)).argmax(1)
    correct = int((predictions == torch.from_numpy(test_set.labels)).sum())
    accuracy = correct / len(test_set.labels)

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    write_atomic(out, buf.getvalue())
    card = {
        "test_accuracy": accuracy,
        "sha256": sha256_file(out),
        "epochs": args.epochs,
        "seed": args.seed,
        "command": card_command(argv),
        "architecture": ARCHITECTURE,
        "layers": LAYERS,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "max_shift": args.max_shift,
        "train_minutes": round(minutes, 1),
        "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }
    write_atomic(out.with_suffix(".json"), dumps(card, indent=2) + "\n")
    print(f"test accuracy: {accuracy:.2%} ({correct}/{len(test_set.labels)}) in {minutes:.1f} min; "
          f"wrote {out} and {out.with_suffix('.json')}; score with it: --classifier {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
