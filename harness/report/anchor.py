"""The anchor of the I' scale: real data's I', with the scorer and sample count of the runs.

MNIST: the real test set through the classifier (harness.metrics.Scorer.real_iprime, cached per
classifier and sample count; MNIST found through --data-dir, HARNESS_DATA_DIR or the cache and
never downloaded). Another dataset: its own real samples through its own scorer."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import datasets
from harness.report.analysis import score_sample_counts
from harness.report.tables import ReportError


def real_anchor(runs: pd.DataFrame, data_dir: str | Path | None = None,
                classifier: str | Path | None = None) -> tuple[float | None, str]:
    """The real data's I' with the runs' scorer and sample count, and a sentence saying what it
    is or why it is missing. Never raises: without MNIST (nothing is downloaded) or a readable
    classifier it returns None and the reason."""
    counts = score_sample_counts(runs)
    if counts.empty:
        return None, "real-data line not drawn: the table has no scoreSamples column"
    n = int(counts.index[0])
    mixed = f" (the most common of {len(counts)} sample counts in the table)" if len(counts) > 1 else ""
    name = runs["dataset"].dropna().iloc[0] if "dataset" in runs and runs["dataset"].notna().any() else "mnist"
    if name != datasets.DEFAULT:
        dataset = datasets.find(name)
        if dataset is None:
            return None, f"real-data line not drawn: dataset {name!r} is not registered here"
        value = dataset.scorer(None, None, "cpu").real_iprime(n)
        return value, f"{dataset.title}, {n} real samples{mixed}: I' = {value:.3f}"
    return _mnist_anchor(n, mixed, data_dir, classifier)


def _mnist_anchor(n: int, mixed: str, data_dir, classifier) -> tuple[float | None, str]:
    from classifiers.convnet import ClassifierError
    from harness.data import DataError, resolve_data_dir
    try:
        from harness.metrics import REAL_DRAWS, Scorer
        scorer = Scorer(classifier, None)
        if not scorer.real_iprime_cache(min(n, 10000)).exists():
            scorer.data_dir = resolve_data_dir(data_dir, download=False)
        value = scorer.real_iprime(n)
    except (DataError, ClassifierError, OSError, ValueError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        return None, f"real-data line not drawn: {reason}"
    what = ("all 10000 images" if n >= 10000 else
            f"mean over {REAL_DRAWS} random draws of {n} images")
    return value, (f"real MNIST test set, {what}{mixed}, classifier {scorer.weights_sha[:12]}: "
                   f"I' = {value:.3f}")


def check_anchor_options(data_dir: str | Path | None, classifier: str | Path | None) -> None:
    """--data-dir and --classifier, when given, must be usable: a typo is an error, not a
    silently missing line (without them the anchor is optional, see real_anchor)."""
    if data_dir is not None:
        from harness.data import DataError, resolve_data_dir
        try:
            resolve_data_dir(data_dir, download=False)
        except DataError as e:
            raise ReportError("--data-dir", f"{e.what} {e.why}", "pass the folder with "
                              "MNIST's four IDX files, or leave --data-dir out") from e
    if classifier is not None:
        from classifiers.convnet import ClassifierError, load_classifier
        try:
            load_classifier(classifier)
        except (ClassifierError, OSError) as e:
            why = f"{e.what} {e.why}" if isinstance(e, ClassifierError) else str(e).splitlines()[0]
            raise ReportError("--classifier", why, "pass the weights the runs were scored with, "
                              "or leave --classifier out") from e
