"""Where a result row came from: the classifier that scored it, the code, the libraries, the device.

Every row of the results table carries these columns, so that a table grown over several
sessions, machines or classifier retrainings says which rows may be compared:

    classifierSha256  SHA-256 of the ConvNet weights that computed I', IS and FID
    harnessVersion    this package's version (pyproject), "unknown" if it is not installed
    gitCommit         the checkout's commit, "+dirty" when tracked files differ from it,
                      "unknown" outside a git checkout or without git
    torchVersion      torch.__version__ (with its build label, e.g. 2.13.0+cpu)
    rayVersion        Ray's installed version, "none" without Ray (read from the package
                      metadata: Ray is not imported, and the trainers run without it)
    pythonVersion     e.g. 3.11.7
    deviceName        the CUDA device's name, or the CPU's model

Each value is computed once per process (the git call and /proc/cpuinfo are read once).
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

COLUMNS = ("classifierSha256", "harnessVersion", "gitCommit", "torchVersion", "rayVersion",
           "pythonVersion", "deviceName")
UNKNOWN = "unknown"
PACKAGE = "gan-harness"
CHECKOUT = Path(__file__).resolve().parents[1]  # the repository root, when run from a checkout


def package_version(name: str, missing: str) -> str:
    """An installed distribution's version from its metadata (nothing is imported)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return missing


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def git_commit() -> str:
    """HEAD of the checkout this module lives in, "+dirty" if tracked files were changed;
    "unknown" when the module is not in a git checkout of its own (e.g. installed in a venv)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != CHECKOUT:
        return UNKNOWN
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return UNKNOWN
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return commit + ("+dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


@functools.cache
def cpu_kernels() -> str:
    """The CPU as its kernels see it: the model, ATen's vector ISA and AMX where present, e.g.
    "AMD EPYC (AVX512)". Two CPUs of one model name can still dispatch other kernels (an EPYC
    with or without AVX-512), and the kernels decide how a batched matmul rounds."""
    import torch

    flags = ""
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
    isa = [torch.backends.cpu.get_cpu_capability()] + (["AMX"] if " amx_tile" in flags else [])
    return f"{cpu_model()} ({', '.join(isa)})"


@functools.cache
def device_name(device: str) -> str:
    """The CUDA device's name for "cuda"/"cuda:N", the CPU model otherwise."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()


@functools.cache
def _software() -> dict[str, str]:
    import torch

    return {"harnessVersion": package_version(PACKAGE, UNKNOWN), "gitCommit": git_commit(),
            "torchVersion": torch.__version__, "rayVersion": package_version("ray", "none"),
            "pythonVersion": platform.python_version()}


def provenance(device: object, classifier_sha: str) -> dict[str, str]:
    """The provenance columns (COLUMNS) of a row scored by the classifier `classifier_sha`
    (`Scorer.weights_sha`) on `device` (a torch.device or its name)."""
    return {"classifierSha256": classifier_sha, **_software(), "deviceName": device_name(str(device))}
