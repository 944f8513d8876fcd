"""MNIST: find, download, verify and read the four IDX files; shape them for the GANs.

Where the files come from, first match wins:
  1. the folder given by `--data-dir` (the `data_dir` argument),
  2. the folder in the `HARNESS_DATA_DIR` environment variable,
  3. the cache folder (`HARNESS_CACHE_DIR`, default ~/.cache/gan-harness/mnist), downloaded
     there from the usual public mirrors if it is not complete yet.
Each file may be `.gz` or raw. Its uncompressed content must match the SHA-256 below.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.errors import HarnessError

FILES = {  # name -> SHA-256 of the uncompressed IDX file
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000)}


class DataError(HarnessError):
    """A user-facing problem with the data: the file, what is wrong with it, and the fix."""


@dataclass
class MNIST:
    images: np.ndarray  # uint8 [N, 28, 28]
    labels: np.ndarray  # int64 [N]


def default_cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE_DIR", Path.home() / ".cache" / "gan-harness")) / "mnist"


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(str(path), f"cannot be read ({e}), so the file is truncated or not MNIST",
                        "delete it and download MNIST again") from None


def _verified(path: Path, name: str) -> bytes:
    raw = _read_bytes(path)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != FILES[name]:
        raise DataError(str(path), f"SHA-256 {digest[:12]}... does not match MNIST's {name} "
                        f"({FILES[name][:12]}..., {len(raw)} bytes), so the file is truncated, corrupt or not MNIST",
                        "replace it with the original")
    return raw


def _download(folder: Path, mirrors: tuple[str, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if _find(folder, name) is not None:
            continue
        errors = []
        for mirror in mirrors:
            url = f"{mirror}{name}.gz"
            try:
                with urllib.request.urlopen(url, timeout=30) as r, \
                        tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
                    shutil.copyfileobj(r, tmp)
                target = folder / f"{name}.gz"
                try:
                    _verified(Path(tmp.name).rename(target), name)
                except DataError as e:
                    target.unlink()
                    raise e
                print(f"downloaded {url}")
                break
            except (OSError, DataError) as e:
                errors.append(f"{url}: {e.why if isinstance(e, DataError) else e}")
        else:
            raise DataError(f"MNIST's {name}", f"no mirror could serve it ({', '.join(errors)})",
                            "download MNIST by hand and pass --data-dir DIR or set HARNESS_DATA_DIR")


def resolve_data_dir(data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The folder holding the four MNIST files (downloading them into the cache if needed)."""
    given = data_dir or os.environ.get("HARNESS_DATA_DIR")
    if given:
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise DataError(f"data folder {folder}", "does not exist", "pass --data-dir with the folder "
                            "holding MNIST's four IDX files, or leave it out to download them")
        missing = [n for n in FILES if _find(folder, n) is None]
        if missing:
            raise DataError(f"data folder {folder}", f"lacks {', '.join(missing)} (.gz or raw)",
                            "put MNIST's four IDX files there")
        return folder
    folder = default_cache_dir()
    if any(_find(folder, n) is None for n in FILES):
        if not download:
            raise DataError(f"MNIST is not in {folder}", "this command does not download it",
                            "pass --data-dir DIR or set HARNESS_DATA_DIR")
        mirrors = tuple(m for m in os.environ.get("HARNESS_MNIST_MIRRORS", "").split() if m) or MIRRORS
        _download(folder, mirrors)
    return folder


def _parse_idx(raw: bytes, name: str, path: Path) -> np.ndarray:
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise DataError(str(path), f"not an unsigned-byte IDX file (magic {magic:#x})",
                        f"replace it with MNIST's {name}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def load_mnist(split: str = "train", data_dir: str | Path | None = None) -> MNIST:
    """Read and verify one split ("train" or "test")."""
    folder = resolve_data_dir(data_dir)
    image_name, label_name, n = SPLITS[split]
    arrays = []
    for name in (image_name, label_name):
        path = _find(folder, name)
        arrays.append(_parse_idx(_verified(path, name), name, path))
    images, labels = arrays
    assert len(images) == len(labels) == n
    return MNIST(images=images, labels=labels.astype(np.int64))


def to_tensor32(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 1, 32, 32] in [-1, 1], zero-padded (SPEC: 32 x 32)."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32) / 127.5 - 1.0
    return torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1.0).unsqueeze(1)


def gan_training_set(data_dir: str | Path | None, n_images: int, device: str | torch.device) -> torch.Tensor:
    """The first `n_images` training images as ONE tensor [N, 1024] on `device`.

    The trainer draws minibatches from it by index: no DataLoader, no per-step copies.
    """
    mnist = load_mnist("train", data_dir)
    if not 1 <= n_images <= len(mnist.images):
        raise DataError(f"trainImages={n_images}", f"must be between 1 and {len(mnist.images)}",
                        f"set trainImages to at most {len(mnist.images)}")
    return to_tensor32(mnist.images[:n_images]).flatten(1).to(device)
