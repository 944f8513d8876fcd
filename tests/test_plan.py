"""From configs to trials: packs of one shape, the costliest first, pack sizes per device and
the resources each trial asks for."""
from dataclasses import replace

from harness.config import TrainConfig
from harness.grid import load_grid
from harness.plan import cpu_pack_size, make_packs, pending_configs, plan_packs
from tests.helpers import REPO


def test_packs_group_same_shapes_only():
    grid = load_grid(REPO / "grids" / "mnist_table1.yaml")
    packs = make_packs(pending_configs(grid.configs, set(), None), pack_size=24)
    assert sum(len(p) for p in packs) == 6656
    assert all(len({c.shape_key() for c in p}) == 1 for p in packs)
    assert max(len(p) for p in packs) == 24
    gan_packs = [p for p in packs if p[0].family == "gan"]
    assert len(gan_packs) == 256  # 256 GAN architectures x 24 (dropoutD x optimD x optimG x lr)


def test_plan_puts_the_costliest_packs_first_and_injected_failures_alone():
    from harness.costmodel import Rates
    grid = load_grid(REPO / "grids" / "mnist_table1.yaml")
    rates = Rates("cpu", step_overhead_s=1e-4, flops_per_s=4e10, score_s_per_sample=1e-4, trial_overhead_s=1)
    victim = grid.configs[5].config_id
    packs = plan_packs(grid.configs, 8, rates, alone=frozenset({victim}))
    costs = [rates.pack_seconds(p) for p in packs]
    assert costs == sorted(costs, reverse=True)
    assert [[c] for c in grid.configs if c.config_id == victim][0] in packs
    assert sum(map(len, packs)) == 6656


def test_trial_resources_are_sized_to_the_pack():
    from harness.plan import trial_resources

    small = [TrainConfig(nLayerG=2, nLayerD=2, sizeG=400, sizeD=128)] * 8
    large = [TrainConfig(nLayerG=5, nLayerD=5, sizeG=3200, sizeD=1024)]
    # CPU: host memory grows with the pack's size and width; the CPUs are as asked
    r_small, r_large = trial_resources(small, 1, 0, None), trial_resources(large * 2, 1, 0, None)
    assert r_small["cpu"] == 1 and r_small["gpu"] == 0
    assert r_small["memory"] < r_large["memory"] < trial_resources(large * 8, 1, 0, None)["memory"]
    # ... in a few sizes (powers of sqrt 2 GiB), so that a worker process can serve many packs
    sizes = {trial_resources([TrainConfig(sizeG=g, sizeD=d)] * 8, 1, 0, None)["memory"]
             for g in (400, 800, 1600) for d in (128, 256, 512)}
    assert len(sizes) <= 3
    # GPU: small packs share a card at the asked fraction; a pack too big for that takes more
    assert trial_resources(small, 1, 0.25, 80e9) == {"cpu": 1, "gpu": 0.25}
    big = trial_resources(large * 24, 1, 0.25, 80e9)["gpu"]
    assert 0.25 < big <= 1 and (big * 8).is_integer()
    assert trial_resources(large * 24, 1, 0.25, None)["gpu"] == 0.25  # card size unknown: as asked


def test_gpu_pack_size_fills_the_trials_share_of_the_card():
    from harness.costmodel import pack_memory
    from harness.plan import TRIAL_OVERHEAD_BYTES, gpu_pack_size
    small = TrainConfig(nLayerG=2, nLayerD=2, sizeG=400, sizeD=128)
    large = TrainConfig(nLayerG=5, nLayerD=5, sizeG=3200, sizeD=1024)
    h200 = 139 * 2**30
    assert gpu_pack_size(h200, 0.25)(small) == 96                     # the largest measured pack
    k = gpu_pack_size(h200, 0.25)(large)
    assert 1 <= k < 96 and pack_memory(large, k) <= 0.8 * h200 / 4 - TRIAL_OVERHEAD_BYTES < pack_memory(large, k + 1)
    assert gpu_pack_size(h200, 1.0)(large) > k                         # a whole card holds more
    assert gpu_pack_size(None, 0.25)(large) == 24                      # card unknown: Table 1's group


def test_sweep_packs_mix_seeds_and_optimizers_of_one_shape():
    cfgs = [TrainConfig(seed=s, optimD=d) for s in (0, 1) for d in ("adam", "sgd")] + [TrainConfig(sizeG=32)]
    packs = make_packs(cfgs, 8)
    assert [len(p) for p in packs] == [4, 1]


def test_sweep_cpu_default_packs_8_32_for_tiny_models_and_2_for_the_widest():
    small, wide = TrainConfig(nLayerG=5, sizeG=1600, nLayerD=5, sizeD=1024), TrainConfig(nLayerG=4, sizeG=3200)
    assert cpu_pack_size(small) == 8 and cpu_pack_size(wide) == 2
    ring = TrainConfig(dataset="ring8", nLayerG=3, nLayerD=3, sizeG=128, sizeD=128)   # ring8_table1's largest
    assert cpu_pack_size(ring) == 32 and cpu_pack_size(TrainConfig(sizeG=400, sizeD=128)) == 8
    cfgs = [replace(c, lr=lr) for c in (small, wide) for lr in (0.1, 0.01, 0.001, 0.0001)] * 3
    cfgs = [replace(c, seed=i) for i, c in enumerate(cfgs)]
    assert sorted(len(p) for p in make_packs(cfgs, cpu_pack_size)) == [2] * 6 + [4, 8]
