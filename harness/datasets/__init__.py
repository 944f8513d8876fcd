"""Datasets as plugins: one file per dataset in this folder, found by name, like the families.

    datasets.get("ring8")        # the Dataset a grid file's `dataset:` names (default "mnist")
    datasets.of(cfg)             # ... of a TrainConfig
    datasets.names()

A dataset declares its sample size, its training stream and its scorer (harness/datasets/base.py).
MNIST is `mnist.py` (IDX files through harness.data, the ConvNet of classifiers/ through
harness.metrics); `ring8.py` and `grid25.py` are the 2D Gaussian mixtures (`_mixture.py`),
scored with their exact posterior. Found by importing every module of this package (names
without a leading `_`, but `base`), plus the modules named in $HARNESS_DATASETS
(comma-separated module names or .py paths), plus any passed to `load_module`.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType

from harness.datasets.base import Dataset

__all__ = ["Dataset", "register", "load_module", "get", "find", "names", "of", "DEFAULT"]
ENV = "HARNESS_DATASETS"
DEFAULT = "mnist"
_REGISTRY: dict[str, Dataset] = {}
_discovered = False
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register(dataset: Dataset) -> Dataset:
    """Add a dataset (replacing one of the same name)."""
    if not _NAME.fullmatch(dataset.name or ""):
        raise ValueError(f"dataset name {dataset.name!r}: use lower-case letters, digits and '_'")
    if not dataset.dim > 0:
        raise ValueError(f"dataset {dataset.name}: give dim, a sample's size")
    _REGISTRY[dataset.name] = dataset
    return dataset


def load_module(name_or_path: str | Path) -> Dataset:
    """Import a dataset module (a module name, or a .py file) and register its DATASET."""
    text = str(name_or_path)
    if text.endswith(".py"):
        path = Path(text)
        spec = importlib.util.spec_from_file_location(f"harness_dataset_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"{path}: cannot be imported")
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(text)
    dataset = getattr(module, "DATASET", None)
    if not isinstance(dataset, Dataset):
        raise ValueError(f"{text}: has no DATASET = <a harness.datasets.Dataset>")
    return register(dataset)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            load_module(f"{__name__}.{info.name}")
    for extra in filter(None, (x.strip() for x in os.environ.get(ENV, "").split(","))):
        load_module(extra)


def names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def find(name: str) -> Dataset | None:
    _discover()
    return _REGISTRY.get(name)


def get(name: str) -> Dataset:
    dataset = find(name)
    if dataset is None:
        raise KeyError(f"dataset {name!r} is not one of {', '.join(names())}")
    return dataset


def of(cfg) -> Dataset:
    """The dataset a TrainConfig trains on."""
    return get(getattr(cfg, "dataset", DEFAULT))
