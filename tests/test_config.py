"""One run's settings: every problem named at once, ids that do not move, the run's schedule."""
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from harness import families
from harness.config import (
    ConfigError,
    TrainConfig,
    g_steps,
    scored_epochs,
    setting_names,
    steps_per_epoch,
    total_steps,
)
from harness.grid import load_grid
from harness.plan import make_packs
from harness.settings import ADDED_SETTINGS, NET_SETTINGS, CommonSettings
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


# --- the networks' settings: normG, normD, initStdG, initStdD ----------------------------------

NETS_AT_DEFAULTS = dict(normG="batch", normD="batch", initStdG=0.02, initStdD=0.002)


def test_the_networks_settings_at_appendix_cs_values_keep_every_id():
    """Added after results were recorded, at the values every earlier run had (ADDED_SETTINGS): not
    hashed, so TrainConfig() and the shipped grids' configs keep their ids (tests/golden/ recorded
    them before); any other value is a config of its own."""
    assert {n: ADDED_SETTINGS[n] for n in NET_SETTINGS} == {n: getattr(CommonSettings, n) for n in NET_SETTINGS}
    for family in families.names():
        cfg = TrainConfig(family=family)
        assert TrainConfig(family=family, **NETS_AT_DEFAULTS).config_id == cfg.config_id
        assert not set(NET_SETTINGS) & set(cfg._identity())
    assert {f: TrainConfig(family=f).config_id for f in ("gan", "ebgan", "wgan_gp")} == {   # the ids they had
        "gan": "c71b59078243e8bd", "ebgan": "97e548cb3894420a", "wgan_gp": "029b49c26056c2c9"}
    golden = json.loads((Path(__file__).parent / "golden" / "smoke_rows.json").read_text())
    smoke = load_grid(REPO / "grids" / "smoke.yaml").configs
    assert {c.config_id for c in smoke} == {r["configId"] for r in golden["grids"]["smoke"]}
    ids = {TrainConfig(**{**NETS_AT_DEFAULTS, name: value}).config_id
           for name, value in (("normG", "none"), ("normD", "layer"), ("initStdG", 0.05), ("initStdD", 0.02))}
    assert len(ids) == 4 and TrainConfig().config_id not in ids


def test_the_networks_settings_are_result_columns():
    row = TrainConfig(normD="none").to_dict()
    assert {n: row[n] for n in NET_SETTINGS} == {**NETS_AT_DEFAULTS, "normD": "none"}
    assert set(NET_SETTINGS) <= set(setting_names())
    assert TrainConfig.from_dict(row) == TrainConfig(normD="none")


def test_invalid_norms_and_init_stds_are_named():
    with pytest.raises(ConfigError) as e:
        TrainConfig(normG="Batch", normD="group", initStdG=0, initStdD=-0.1)
    assert [p.split(":")[0] for p in e.value.problems] == ["normG", "normD", "initStdG", "initStdD"]
    assert "normD: 'group' is not one of batch, layer, none" in e.value.problems
    for bad in (math.inf, math.nan, "0.02"):
        with pytest.raises(ConfigError, match="initStdD: .* must be a finite number > 0"):
            TrainConfig(initStdD=bad)


def test_norms_as_trained_split_packs_and_init_stds_do_not():
    """The pack's layers are one kind for all its members: configs that differ in normG or in the
    normD D is trained with are in different packs. Init stds may mix: each member is initialized
    as its reference run (tests/engine/test_pack.py holds such a pack to its members' runs)."""
    base = TrainConfig()
    norms = [replace(base, normD="none"), replace(base, normD="layer"), replace(base, normG="none")]
    stds = [replace(base, initStdD=0.02), replace(base, initStdG=0.05, initStdD=0.01)]
    assert len({c.shape_key() for c in [base, *norms]}) == 4
    assert len({c.shape_key() for c in [base, *stds]}) == 1
    packs = make_packs([base, *norms, *stds], 8)
    assert [[c.config_id for c in p] for p in packs] == \
        [[c.config_id for c in p] for p in ([base, *stds], *([c] for c in norms))]
    # a family with a D norm of its own trains the same D whatever normD says: one pack
    wgan = TrainConfig(family="wgan_gp")
    assert {c.norm_d for c in (wgan, replace(wgan, normD="none"))} == {"layer"}
    assert len(make_packs([wgan, replace(wgan, normD="none"), replace(wgan, normG="none")], 8)) == 2
