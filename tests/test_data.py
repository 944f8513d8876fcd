"""MNIST reading, verification (missing / truncated / foreign files) and the download path."""
import gzip
import http.server
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

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
    """MNIST's four files from `src` (raw or .gz) into `dst`, gzip'd."""
    dst.mkdir(exist_ok=True)
    for name in data.FILES:
        found = data._find(src, name)
        if found.suffix == ".gz":
            shutil.copy(found, dst / f"{name}.gz")
        else:
            with gzip.open(dst / f"{name}.gz", "wb") as f:
                f.write(found.read_bytes())
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
        (folder / name).write_bytes(data._read_bytes(data._find(data_dir, name)))
    assert load_mnist("test", folder).images.shape == (10000, 28, 28)


def test_download_from_a_mirror_into_the_cache(tmp_path, data_dir, monkeypatch):
    """A real HTTP download, from a mirror served on loopback, verified by checksum."""
    mirror = copy_mnist(data_dir, tmp_path / "mirror")  # a mirror serves the .gz files
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
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


def test_tests_without_data_or_internet_stop_with_one_line(tmp_path):
    """No HARNESS_DATA_DIR, an empty cache, no reachable mirror: the test run stops at once,
    exit 2, with one line that names the fix (not a failure per test)."""
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DATA_DIR"}
    env.update(HARNESS_CACHE_DIR=str(tmp_path / "cache"), HARNESS_MNIST_MIRRORS="http://127.0.0.1:1/")
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                          "tests/test_data.py::test_reads_real_mnist"],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [l for l in (out.stdout + out.stderr).splitlines() if "MNIST" in l]
    assert len(lines) == 1, out.stdout + out.stderr
    assert "--data-dir" in lines[0] and "HARNESS_DATA_DIR" in lines[0]
    assert "passed" not in out.stdout and "no tests ran" in out.stdout
