"""Fixtures of the report's tests: synthetic results (built by report_fixtures.py) and an
environment in which the report finds MNIST only where a test passes it."""
from __future__ import annotations

import pandas as pd
import pytest
from report_fixtures import SMALL_ARCH, family_configs, make_trials, table1_configs


@pytest.fixture
def no_mnist_unless_passed(monkeypatch, tmp_path_factory):
    """The report finds MNIST (for the real-data anchor) only through --data-dir here: no
    HARNESS_DATA_DIR, and a cache folder of the tests' own (the anchor's cache lives beside it)."""
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "harness-cache"))


@pytest.fixture(scope="module")
def table1() -> pd.DataFrame:
    """Table 1's exact shape: one seed, 5 diverged and 3 error runs."""
    return make_trials(table1_configs(), rng_seed=1, n_diverged=5, n_error=3)


@pytest.fixture(scope="module")
def family_runs() -> pd.DataFrame:
    """Every family: EBGAN, GAN's subgrids and EBGAN-PT, then LSGAN, WGAN-GP and BEGAN."""
    df = make_trials(table1_configs(SMALL_ARCH, pt_points=2) + family_configs(), rng_seed=3)
    df.loc[df["model"] == "WGAN-GP", "Iprime"] += 1.0      # a clear shift, for the statistics
    return df
