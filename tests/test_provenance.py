"""Provenance columns: what each says, "unknown"/"none" where there is nothing to say, computed once."""
from __future__ import annotations

import importlib.metadata
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import provenance as prov

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_caches():
    """Every cached value recomputed inside the test, and again after it."""
    caches = (prov.git_commit, prov.device_name, prov._software)
    for f in caches:
        f.cache_clear()
    yield
    for f in caches:
        f.cache_clear()


def test_columns_and_values_on_cpu(fresh_caches):
    row = prov.provenance(torch.device("cpu"), "ab" * 32)
    assert tuple(row) == prov.COLUMNS
    assert row["classifierSha256"] == "ab" * 32
    assert row["torchVersion"] == torch.__version__
    assert row["pythonVersion"] == platform.python_version()
    assert row["rayVersion"] == prov.package_version("ray", "none")
    assert row["harnessVersion"] == importlib.metadata.version("gan-harness")
    assert row["deviceName"] == prov.cpu_model() and row["deviceName"] not in ("", prov.UNKNOWN)


def test_git_commit_is_this_checkouts_head(fresh_caches):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not run from a git checkout")
    commit = prov.git_commit()
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit) and commit.startswith(head.stdout.strip())


def test_git_commit_outside_a_checkout_or_without_git_is_unknown(fresh_caches, monkeypatch, tmp_path):
    monkeypatch.setattr(prov, "CHECKOUT", tmp_path)        # not a git checkout
    assert prov.git_commit() == "unknown"
    prov.git_commit.cache_clear()
    monkeypatch.setattr(prov, "CHECKOUT", REPO)
    monkeypatch.setenv("PATH", str(tmp_path))              # no git program at all
    assert prov.git_commit() == "unknown"


def test_missing_package_is_named_as_asked():
    assert prov.package_version("no-such-distribution-x9", "none") == "none"


def test_cuda_device_name_comes_from_torch(fresh_caches, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"Fake GPU {device}")
    assert prov.provenance("cuda:0", "x")["deviceName"] == "Fake GPU cuda:0"
    assert prov.provenance("cpu", "x")["deviceName"] == prov.cpu_model()


def test_computed_once_per_process(fresh_caches, monkeypatch):
    calls = []
    real_git = prov._git
    monkeypatch.setattr(prov, "_git", lambda *a: calls.append(a) or real_git(*a))
    first = prov.provenance("cpu", "a")
    n = len(calls)
    assert n >= 1
    for _ in range(5):
        assert prov.provenance("cpu", "b") == {**first, "classifierSha256": "b"}
    assert len(calls) == n


def test_ray_is_not_imported():
    code = ("import sys; from harness.provenance import provenance; provenance('cpu', 'x'); "
            "assert 'ray' not in sys.modules, 'ray was imported'")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
