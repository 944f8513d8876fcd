"""Random, stratified, nested subsets of a grid (harness/sampling.py)."""
import random
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import pytest

from harness.sampling import (
    allocate,
    allocation_sequence,
    priority,
    sample_configs,
    sample_note,
)


@dataclass(frozen=True)
class Cfg:
    config_id: str
    family: str
    subgrid: str
    seed: int


@dataclass(frozen=True)
class SeededCfg(Cfg):
    settings_id: str


def grid(strata: dict[tuple[str, str], int], prefix: str = "c") -> list[Cfg]:
    """Configs (one seed each) in the given strata, with the given sizes."""
    return [Cfg(f"{prefix}{f}{g}{i}", f, g, 0) for (f, g), size in strata.items() for i in range(size)]


# unequal strata: shares 40/100, 31/100, 17/100, 9/100, 2/100, 1/100
UNEQUAL = {("ebgan", "adam"): 40, ("gan", "adam"): 31, ("gan", "sgd"): 17, ("lsgan", "adam"): 9,
           ("wgan_gp", "adam"): 2, ("began", "adam"): 1}


def within_quota(counts: dict, sizes: dict, n: int) -> bool:
    total = sum(sizes.values())
    return all(abs(counts.get(s, 0) - Fraction(n * size, total)) < 1 for s, size in sizes.items())


def test_allocation_is_proportional_and_monotone_for_random_strata():
    rng = random.Random(1)
    for _ in range(300):
        sizes = [rng.choice([1, 2, 3, 7, rng.randint(1, 50)]) for _ in range(rng.randint(1, 9))]
        total = sum(sizes)
        seq = allocation_sequence(sizes, total, [rng.getrandbits(64) for _ in sizes])
        assert Counter(seq) == dict(enumerate(sizes))
        counts = [0] * len(sizes)
        for n, s in enumerate(seq, 1):  # each prefix is the allocation for n: monotone by construction
            counts[s] += 1
            assert all(abs(c - Fraction(n * size, total)) < 1 for c, size in zip(counts, sizes, strict=True))


def test_allocate_sums_to_n_and_equal_strata_all_get_one():
    assert allocate([512] * 13, 13) == [1] * 13
    assert sum(allocate([40, 31, 17, 9, 2, 1], 37)) == 37
    with pytest.raises(ValueError):
        allocate([3, 4], 8)


def test_sample_is_stratified_for_every_n():
    configs = grid(UNEQUAL)
    for n in range(1, len(configs) + 1):
        got = sample_configs(configs, n, seed=3)
        assert len(got) == n
        assert within_quota(Counter((c.family, c.subgrid) for c in got), UNEQUAL, n)


def test_samples_are_nested_for_many_sizes_and_seeds():
    configs = grid(UNEQUAL)
    rng = random.Random(2)
    for seed in (0, 1, 17):
        samples = {n: {c.config_id for c in sample_configs(configs, n, seed)} for n in range(1, 101)}
        for _ in range(300):
            n1, n2 = sorted(rng.sample(range(1, 101), 2))
            assert samples[n1] < samples[n2]
    ids = [{c.config_id for c in sample_configs(configs, 30, seed)} for seed in (0, 1)]
    assert ids[0] != ids[1]


def test_sample_is_random_within_a_stratum():
    configs = grid({("gan", "adam"): 100})
    hits = Counter(c.config_id for seed in range(400) for c in sample_configs(configs, 10, seed))
    assert len(hits) == 100  # every config is drawn by some seed
    assert max(hits.values()) < 90  # expected 40 each (400 x 10 / 100)


def test_sample_keeps_grid_order_and_does_not_depend_on_it():
    configs = grid(UNEQUAL)
    got = sample_configs(configs, 25, seed=5)
    assert got == [c for c in configs if c in set(got)]
    shuffled = configs[:]
    random.Random(0).shuffle(shuffled)
    assert set(sample_configs(shuffled, 25, seed=5)) == set(got)


def test_adding_configs_keeps_most_of_a_sample():
    before = grid(UNEQUAL)
    after = before + grid({("gan", "adam"): 10, ("gan", "rmsprop"): 20}, prefix="new")
    old = set(sample_configs(before, 30, seed=9))
    new = set(sample_configs(after, 30, seed=9))
    # strata shares moved (new stratum, grown gan/adam) and new configs may outrank old ones;
    # what stays sampled is what still ranks first in its stratum
    assert len(old & new) >= 20
    # the priority of a unit is a function of (seed, key) alone
    assert priority(9, "abc") == priority(9, "abc") != priority(10, "abc")


def test_settings_unit_keeps_every_seed():
    configs = [SeededCfg(f"{f}{g}{i}s{seed}", f, g, seed, f"{f}{g}{i}")
               for seed in (0, 1) for (f, g), size in UNEQUAL.items() for i in range(size)]
    for n in (1, 7, 50, 99):
        got = sample_configs(configs, n, seed=4)
        by_settings = Counter(c.settings_id for c in got)
        assert len(by_settings) == n and set(by_settings.values()) == {2}  # both seeds of each
        assert got == [c for c in configs if c in set(got)]  # seeds outermost, as the grid has them
    small = {c.settings_id for c in sample_configs(configs, 12, seed=4)}
    assert small < {c.settings_id for c in sample_configs(configs, 40, seed=4)}
    # a custom unit: sample runs (config x seed) instead
    runs = sample_configs(configs, 12, seed=4, unit=lambda c: c.config_id)
    assert len(runs) == 12


def test_unit_in_two_strata_is_refused():
    configs = [SeededCfg("a0", "gan", "adam", 0, "a"), SeededCfg("a1", "gan", "sgd", 1, "a")]
    with pytest.raises(ValueError, match="two strata"):
        sample_configs(configs, 1, seed=0)


def test_bounds():
    configs = grid(UNEQUAL)
    assert sample_configs(configs, len(configs), 0) == configs
    assert sample_configs(configs, 10 ** 6, 0) == configs
    assert sample_configs([], 5, 0) == []
    for bad in (0, -3):
        with pytest.raises(ValueError, match="positive") as e:
            sample_configs(configs, bad, 0)
        assert "\n" not in str(e.value)
    with pytest.raises(TypeError):
        sample_configs(configs, 2.5, 0)


def test_custom_stratum():
    configs = grid(UNEQUAL)
    got = sample_configs(configs, 10, seed=0, stratum=lambda c: c.family)
    fam = Counter(c.family for c in got)
    sizes = Counter(c.family for c in configs)
    assert within_quota(fam, sizes, 10)


def test_sample_note():
    assert sample_note(12, 6656, 3) == "12 of 6656 configs, sampled at random (seed 3)"
    assert sample_note(10, 10, 3) == "all 10 configs"
