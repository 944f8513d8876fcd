"""Train the MNIST ConvNet on the whole training set and write its weights and card.

    python -m classifiers.train --data-dir DIR [--epochs N] [--seed S] [--threads T] [--out PATH]

Deterministic for a seed (and thread count) on a given machine: the seed sets the initial weights, and a
`torch.Generator` seeded from it draws the data order and the random shifts.
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
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
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS, help="weights file; the card goes next to it (.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    try:
        train_set, test_set = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    model = ConvNet()
    x, y = to_tensor32(train_set.images), torch.from_numpy(train_set.labels)
    start = time.time()
    train(model, x, y, args.epochs, args.batch_size, args.lr, args.max_shift, generator)
    minutes = (time.time() - start) / 60

    model.eval()
    predictions = predict_logits(model, to_tensor32(test_set.images)).argmax(1)
    correct = int((predictions == torch.from_numpy(test_set.labels)).sum())
    accuracy = correct / len(test_set.labels)

    out: Path = args.out
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    write_atomic(out, buf.getvalue())
    card = {
        "test_accuracy": accuracy,
        "sha256": sha256_file(out),
        "epochs": args.epochs,
        "seed": args.seed,
        "command": f"python -m classifiers.train {shlex.join(argv)}".strip(),
        "architecture": ARCHITECTURE,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "max_shift": args.max_shift,
        "train_minutes": round(minutes, 1),
        "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }
    write_atomic(out.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    print(f"test accuracy: {accuracy:.2%} ({correct}/{len(test_set.labels)}) in {minutes:.1f} min; "
          f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
