"""Datasets as plugins: one file per dataset in this folder, found by name, like the families.

    datasets.get("ring8")        # the Dataset a grid file's `dataset:` names (default "mnist")
    datasets.of(cfg)             # ... of a TrainConfig
    datasets.names()

A dataset declares its sample size, its training stream and its scorer (harness/datasets/base.py).
MNIST is `mnist.py` (IDX files through harness.data, the ConvNet of classifiers/ through
harness.metrics); `ring8.py` and `grid25.py` are the 2D Gaussian mixtures (`_mixture.py`, as
datasets by `_mixture_dataset.py`), scored with their exact posterior. Found by importing every
module of this package (names without a leading `_`, but `base`), plus the modules named in
$HARNESS_DATASETS (comma-separated module names or .py paths), plus any passed to `load_module`.
"""
from __future__ import annotations

from harness.datasets.base import Dataset
from harness.plugins import Registry

__all__ = ["Dataset", "register", "unregister", "load_module", "get", "find", "names", "of", "DEFAULT"]
ENV = "HARNESS_DATASETS"
DEFAULT = "mnist"


def _check(dataset: Dataset, others: list[Dataset]) -> None:
    if not dataset.dim > 0:
        raise ValueError(f"dataset {dataset.name}: give dim, a sample's size")


_REGISTRY = Registry("dataset", __name__, "DATASET", Dataset, ENV, _check)
register, unregister, load_module, find, get = (_REGISTRY.register, _REGISTRY.unregister, _REGISTRY.load_module,
                                                _REGISTRY.find, _REGISTRY.get)


def names() -> list[str]:
    return sorted(d.name for d in _REGISTRY.all())


def of(cfg) -> Dataset:
    """The dataset a TrainConfig trains on."""
    return get(getattr(cfg, "dataset", DEFAULT))
