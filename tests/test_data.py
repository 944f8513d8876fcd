"""MNIST reading, verification (missing / truncated / foreign files) and the download path."""
import gzip
import http.server
import shutil
import threading
from functools import partial

import pytest
import torch

from harness import data
from harness.data import DataError, gan_training_set, load_mnist, resolve_data_dir


def test_reads_real_mnist(data_dir):
    test = load_mnist("test", data_dir)
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert sorted(set(test.labels.tolist())) == list(range(10))


def test_gan_training_set_is_padded_scaled_and_on_device(data_dir):
    x = gan_training_set(data_dir, 500, "cpu")
    assert x.shape == (500, 1024) and x.dtype == torch.float32
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    border = x.reshape(500, 32, 32)[:, :2, :]           # the zero padding is black: -1
    assert (border == -1).all()


def test_env_var_is_used(data_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    assert resolve_data_dir(None) == data_dir


def copy_mnist(src, dst):
    dst.mkdir(exist_ok=True)
    for name in data.FILES:
        shutil.copy(src / f"{name}.gz", dst / f"{name}.gz")
    return dst


def test_missing_folder_and_missing_file(tmp_path, data_dir):
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir(tmp_path / "nope")
    folder = copy_mnist(data_dir, tmp_path / "m")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        resolve_data_dir(folder)


def test_truncated_file_is_named(tmp_path, data_dir):
    folder = copy_mnist(data_dir, tmp_path / "m")
    blob = (folder / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*truncated"):
        load_mnist("test", folder)


def test_foreign_file_fails_the_checksum(tmp_path, data_dir):
    folder = copy_mnist(data_dir, tmp_path / "m")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:   # raw IDX of the wrong content
        f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]))
    with pytest.raises(DataError, match="SHA-256 .* does not match"):
        load_mnist("test", folder)


def test_raw_uncompressed_files_are_accepted(tmp_path, data_dir):
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in data.FILES:
        with gzip.open(data_dir / f"{name}.gz") as f:
            (folder / name).write_bytes(f.read())
    assert load_mnist("test", folder).images.shape == (10000, 28, 28)


def test_download_from_a_mirror_into_the_cache(tmp_path, data_dir, monkeypatch):
    """A real HTTP download, from a mirror served on loopback, verified by checksum."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(data_dir))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
        monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("HARNESS_MNIST_MIRRORS", f"http://127.0.0.1:1/ http://127.0.0.1:{server.server_port}/")
        folder = resolve_data_dir(None)
        assert folder == tmp_path / "cache" / "mnist"
        assert load_mnist("test").images.shape == (10000, 28, 28)
    finally:
        server.shutdown()


def test_download_failure_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_MNIST_MIRRORS", "http://127.0.0.1:1/")
    with pytest.raises(DataError, match="--data-dir"):
        resolve_data_dir(None)
