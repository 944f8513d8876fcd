"""One run's settings: every problem named at once, ids that do not move, the run's schedule."""
import json
from pathlib import Path

import pytest

from harness.config import ConfigError, TrainConfig, g_steps, scored_epochs, steps_per_epoch, total_steps
from harness.grid import load_grid
from tests.helpers import REPO


def test_every_problem_is_named_in_a_list():
    with pytest.raises(ConfigError) as e:
        TrainConfig(nLayerG=1, lr=0, budgetCounts="epochs")
    assert [p.split(":")[0] for p in e.value.problems] == ["nLayerG", "lr", "budgetCounts"]
    assert isinstance(e.value, ValueError) and str(e.value) == "; ".join(e.value.problems)


def test_a_setting_added_later_at_its_old_value_keeps_the_ids_of_earlier_runs():
    """budgetCounts came after results were recorded: at "dSteps", what every earlier run did,
    it is not hashed, so the configs' ids are what they were (tests/golden/ recorded them before)."""
    golden = json.loads((Path(__file__).parent / "golden" / "smoke_rows.json").read_text())
    recorded = {r["configId"] for rows in golden["grids"].values() for r in rows}
    configs = [c for g in ("smoke", "smoke_families") for c in load_grid(REPO / "grids" / f"{g}.yaml").configs]
    assert all(c.budgetCounts == "dSteps" for c in configs) and {c.config_id for c in configs} == recorded
    cfg = configs[0]
    other = TrainConfig(**{**cfg.to_dict(), "budgetCounts": "gSteps"})
    assert other.config_id != cfg.config_id and other.shape_key() != cfg.shape_key()


def test_the_budget_counts_d_or_g_updates():
    wgan = dict(family="wgan_gp", trainImages=640, batchSize=64, epochs=3, nCritic=5)
    d, g = TrainConfig(**wgan), TrainConfig(**wgan, budgetCounts="gSteps")
    assert steps_per_epoch(d) == 10
    assert total_steps(d) == 30 and g_steps(d, total_steps(d)) == 6      # D counted: a fifth of the G updates
    assert total_steps(g) == 150 and g_steps(g, total_steps(g)) == 30    # G counted: 5x the D steps
    assert scored_epochs(g) == 15                                         # every pass over the data is scored
    lsgan = dict(family="lsgan", trainImages=640, epochs=3)
    assert total_steps(TrainConfig(**lsgan)) == total_steps(TrainConfig(**lsgan, budgetCounts="gSteps")) == 30
