"""Packed training against the reference trainer, on a slice of real MNIST (CPU, tiny widths).

A member of a pack must follow the run `harness.engine.train` makes of the same config: the
first steps' (lossD, lossG) within the GPU check's tolerances, the steps done, the status and the
final I' on any CPU; every step's losses, I' per epoch, FID and class histogram bit for bit on the
CPU of the golden record (tests/follows.py). A planted bug in one member fails at step 1.
"""
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.config import TrainConfig, steps_per_epoch, total_steps
from harness.engine import train, train_pack
from harness.engine.cuda import autocast_dtype, dropout_masks_for
from harness.engine.pack import generate_pack
from harness.engine.pack_optim import PackOptimizer, member_order
from harness.engine.scoring import score_pack
from harness.nets.stacked import StackedBatchNorm, StackedLinear
from harness.plan import make_packs
from harness.provenance import cpu_kernels
from harness.tools.correctness import compare
from harness.tools.measure import NullScorer
from tests import follows

# 1280 images / 64 = 20 steps per epoch, 3 epochs = 60 steps; BN in G and D (3 layers each)
TINY = dict(nLayerG=3, nLayerD=3, sizeG=64, sizeD=32, trainImages=1280, epochs=3,
            scoreSamples=500, epochScoreSamples=200)

GAN_PACK = [  # Adam and SGD mixed, three learning rates, two seeds
    TrainConfig(family="gan", optimD="adam", optimG="sgd", lr=0.001, **TINY),
    TrainConfig(family="gan", optimD="sgd", optimG="adam", lr=0.01, **TINY),
    TrainConfig(family="gan", optimD="adam", optimG="adam", lr=0.0001, seed=1, **TINY),
]
EBGAN_PACK = [  # EBGAN and EBGAN-PT, Adam and SGD, two learning rates, two seeds
    TrainConfig(family="ebgan", **TINY),
    TrainConfig(family="ebgan", wPT=0.1, **TINY),
    TrainConfig(family="ebgan", optimD="sgd", optimG="adam", lr=0.01, wPT=0.1, seed=3, **TINY),
]
HUGE_LR = TrainConfig(family="gan", optimD="sgd", optimG="sgd", lr=1e6, **TINY)
# the networks' settings (harness.settings: normG, normD, initStdG, initStdD)
NO_NORM_PACK = [  # no normalization in G or D (the 2D mixtures' GANs), Adam and SGD, two seeds
    TrainConfig(family="gan", normG="none", normD="none", **TINY),
    TrainConfig(family="gan", normG="none", normD="none", optimD="sgd", optimG="adam", lr=0.01, seed=1, **TINY),
    TrainConfig(family="gan", normG="none", normD="none", initStdG=0.05, initStdD=0.05, seed=2, **TINY),
]
LAYER_NORM_PACK = [  # layer norm in EBGAN's G and auto-encoder, EBGAN-PT beside EBGAN
    TrainConfig(family="ebgan", normG="layer", normD="layer", **TINY),
    TrainConfig(family="ebgan", normG="layer", normD="layer", wPT=0.1, seed=1, **TINY),
]
INIT_STD_PACK = [  # Appendix C's nets, each member with init stds of its own: one pack
    TrainConfig(family="gan", **TINY),
    TrainConfig(family="gan", initStdD=0.02, **TINY),
    TrainConfig(family="gan", initStdG=0.05, initStdD=0.01, optimD="sgd", lr=0.01, seed=1, **TINY),
]


@pytest.fixture(scope="module")
def reference(data, scorer, tmp_path_factory):
    """The reference trainer's run of a config (each run once per module)."""
    runs = {}
    folder = tmp_path_factory.mktemp("reference_samples")

    def run(cfg: TrainConfig):
        if cfg not in runs:
            runs[cfg] = train(cfg, data, scorer, folder, "cpu", record_losses=True)
        return runs[cfg]
    return run


def assert_follows(member, ref, cfg: TrainConfig) -> None:
    follows.assert_follows(member, ref, f"{cfg.model} {cfg.subgrid} seed {cfg.seed}")


@pytest.mark.parametrize("pack", [GAN_PACK, EBGAN_PACK], ids=["GAN", "EBGAN+EBGAN-PT"])
def test_members_follow_the_reference_trainer(pack, data, scorer, reference, tmp_path):
    assert total_steps(pack[0]) == 60
    results = train_pack(pack, data, scorer, tmp_path, "cpu", record_losses=True)
    assert len(results) == len(pack)
    for cfg, member in zip(pack, results):                      # results come in the configs' order
        ref = reference(cfg)
        assert ref.status == "ok" and ref.steps == 60
        assert_follows(member, ref, cfg)
        assert Path(member.samplesPath) == tmp_path / f"{cfg.config_id}.png" and Path(member.samplesPath).is_file()
        assert member.stepsPerSec > 0 and member.device == "cpu"
        assert (member.lossD, member.lossG) == pytest.approx(member.lossHistory[-1])


@pytest.mark.parametrize("pack", [NO_NORM_PACK, LAYER_NORM_PACK, INIT_STD_PACK],
                         ids=["normG+normD none", "normG+normD layer", "initStd per member"])
def test_members_of_other_nets_follow_the_reference_trainer(pack, data, scorer, reference):
    """The networks' settings in a pack: its layers are the members' norms (one kind for all, in
    shape_key()), and each member starts from its own reference init, whatever its init stds."""
    assert len(make_packs(pack, 8)) == 1
    results = train_pack(pack, data, scorer, None, "cpu", record_losses=True)
    for cfg, member in zip(pack, results):
        ref = reference(cfg)
        assert ref.status == "ok" and ref.steps == 60
        assert_follows(member, ref, cfg)
    assert len({r.lossHistory[0] for r in results}) == len(pack)      # the members did differ


def test_a_diverging_member_is_frozen_and_the_others_train_on(data, scorer, reference, tmp_path):
    pack = [GAN_PACK[0], HUGE_LR, GAN_PACK[1]]
    epochs = []
    results = train_pack(pack, data, scorer, tmp_path, "cpu", record_losses=True,
                         on_epoch=lambda e, s: epochs.append((e, s)))
    bad = results[1]
    # the epoch hook sees every member still training, with the I' its row records
    assert [e for e, _ in epochs] == [1, 2, 3]
    for e, scores in epochs:
        assert scores == {c.config_id: r.IprimePerEpoch[e - 1] for c, r in zip(pack, results)
                          if len(r.IprimePerEpoch) >= e}
    assert bad.status == "diverged" and bad.steps < total_steps(HUGE_LR)
    assert math.isnan(bad.Iprime) and bad.samplesPath is None
    assert_follows(bad, reference(HUGE_LR), HUGE_LR)            # it diverged where the reference does
    for cfg, member in zip(pack[::2], results[::2]):            # and the others did not notice
        assert_follows(member, reference(cfg), cfg)


def test_a_planted_bug_in_one_member_fails_at_step_1_and_its_mates_still_pass(data, scorer, reference):
    """What the comparator must catch on any CPU: a member trained with a wrong learning rate, or
    without its dropout mask, is told from its reference run at step 1 (G's loss sees D's first
    update, and D's loss its dropout); the right member beside them passes."""
    right, dropout = GAN_PACK[0], replace(GAN_PACK[1], dropoutD=True)
    pack = [right, replace(GAN_PACK[2], lr=GAN_PACK[2].lr * 10), replace(dropout, dropoutD=False)]
    wanted = [right, GAN_PACK[2], dropout]
    results = train_pack(pack, data, scorer, None, "cpu", record_losses=True)
    rows = [compare(member, reference(cfg), "fp32") for cfg, member in zip(wanted, results)]
    cpu = cpu_kernels()
    assert rows[0]["status"] == "pass", (cpu, rows[0]["reason"])
    for bug, row in zip(("lr x 10", "no dropout mask"), rows[1:]):
        assert row["status"] == "fail" and "loss at step 1" in row["reason"], (cpu, bug, row)


def test_members_of_different_seeds_follow_their_own_seeds(data, scorer, reference):
    base = dict(TINY, epochs=1)
    pack = [TrainConfig(family="gan", seed=s, **base) for s in (2, 0, 1)]
    results = train_pack(pack, data, scorer, None, "cpu", record_losses=True)
    for cfg, member in zip(pack, results):
        assert_follows(member, reference(cfg), cfg)
    assert results[0].lossHistory != results[1].lossHistory


def test_reference_masks_reproduce_dropout_members_on_cpu(data, scorer, reference):
    pack = [TrainConfig(family="gan", dropoutD=True, **dict(TINY, epochs=1)),
            TrainConfig(family="ebgan", dropoutD=True, dropoutRate=0.3, **dict(TINY, epochs=1))]
    for cfg in pack:
        member = train_pack([cfg, replace(cfg, seed=5)], data, scorer, None, "cpu",
                            record_losses=True, masks="reference")[0]
        assert_follows(member, reference(cfg), cfg)


def test_pack_masks_train_dropout_members_that_differ_from_no_dropout(data, scorer):
    on = TrainConfig(family="gan", dropoutD=True, **dict(TINY, epochs=1))
    off = TrainConfig(family="gan", dropoutD=False, **dict(TINY, epochs=1))
    r_on, r_off = train_pack([on, off], data, scorer, None, "cpu", record_losses=True, masks="pack")
    assert r_on.status == r_off.status == "ok" and math.isfinite(r_on.Iprime)
    assert r_on.lossHistory[0][1] != r_off.lossHistory[0][1]   # G's first loss sees D through dropout
    assert r_on.lossHistory[0][0] != r_off.lossHistory[0][0]


# --- the pieces ----------------------------------------------------------------------------

def test_stacked_linear_and_batch_norm_are_k_independent_layers():
    torch.manual_seed(0)
    K, B = 3, 16
    lins, bns = [nn.Linear(5, 4) for _ in range(K)], [nn.BatchNorm1d(4) for _ in range(K)]
    for bn in bns:
        nn.init.normal_(bn.weight)
        nn.init.normal_(bn.bias)
    slin, sbn = StackedLinear(K, 5, 4), StackedBatchNorm(K, 4)
    with torch.no_grad():
        for k in range(K):
            slin.weight[k], slin.bias[k] = lins[k].weight, lins[k].bias
            sbn.weight[k], sbn.bias[k] = bns[k].weight, bns[k].bias
    x = torch.randn(K, B, 5)
    for _ in range(2):  # twice: the weight gradient is summed in place
        (sbn(slin(x)) ** 3).sum().backward()
        for k in range(K):
            (bns[k](lins[k](x[k])) ** 3).sum().backward()
    packed = sbn(slin(x))
    for k in range(K):
        torch.testing.assert_close(packed[k], bns[k](lins[k](x[k])))
        torch.testing.assert_close(slin.weight.grad[k], lins[k].weight.grad)
        torch.testing.assert_close(slin.bias.grad[k], lins[k].bias.grad, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(sbn.weight.grad[k], bns[k].weight.grad)
        torch.testing.assert_close(sbn.running_mean[k], bns[k].running_mean)
        torch.testing.assert_close(sbn.running_var[k], bns[k].running_var)
    sbn.eval()
    for bn in bns:
        bn.eval()
    torch.testing.assert_close(sbn(x.narrow(2, 0, 4))[1], bns[1](x[1, :, :4]))


@pytest.mark.parametrize("width", [400, 48])
def test_a_linear_before_batch_norm_gets_the_reference_gradients_bit_for_bit(width):
    """The gradient reaching a StackedLinear from a StackedBatchNorm is laid out transposed; summed
    so, the bias gradient rounded unlike the reference's at widths that are not multiples of 32
    (Table 1's sizeG 400), and Adam turns such ulps into different runs."""
    torch.manual_seed(0)
    K, B = 2, 64
    lins, bns = [nn.Linear(8, width) for _ in range(K)], [nn.BatchNorm1d(width) for _ in range(K)]
    slin, sbn = StackedLinear(K, 8, width), StackedBatchNorm(K, width)
    with torch.no_grad():
        for k in range(K):
            slin.weight[k], slin.bias[k] = lins[k].weight, lins[k].bias
    x = torch.randn(K, B, 8)
    (sbn(slin(x)) ** 3).sum().backward()
    for k in range(K):
        (bns[k](lins[k](x[k])) ** 3).sum().backward()
        assert torch.equal(slin.weight.grad[k], lins[k].weight.grad)
        assert torch.equal(slin.bias.grad[k], lins[k].bias.grad)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_pack_optimizer_is_torch_optim_bit_for_bit(momentum):
    torch.manual_seed(0)
    cfgs = [TrainConfig(optimD="adam", lr=0.01), TrainConfig(optimD="adam", lr=0.001, adamBeta1=0.9),
            TrainConfig(optimD="sgd", lr=0.1, sgdMomentum=momentum)]
    net = nn.Sequential(StackedLinear(3, 6, 5), StackedBatchNorm(3, 5))
    singles = [nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)) for _ in cfgs]
    with torch.no_grad():
        for p, *qs in zip(net.parameters(), *(s.parameters() for s in singles)):
            for k, q in enumerate(qs):
                q.copy_(p[k])
    opt = PackOptimizer(net, [c.optimD for c in cfgs], cfgs)
    torch_opts = [torch.optim.Adam(s.parameters(), lr=c.lr, betas=(c.adamBeta1, c.adamBeta2)) if c.optimD == "adam"
                  else torch.optim.SGD(s.parameters(), lr=c.lr, momentum=c.sgdMomentum) for s, c in zip(singles, cfgs)]
    for _ in range(4):
        x = torch.randn(3, 8, 6)
        opt.zero_grad()
        net(x).pow(2).sum().backward()
        opt.step()
        for k, (s, o) in enumerate(zip(singles, torch_opts)):
            o.zero_grad()
            s(x[k]).pow(2).sum().backward()
            o.step()
    for p, *qs in zip(net.parameters(), *(s.parameters() for s in singles)):
        for k, q in enumerate(qs):
            assert torch.equal(p[k], q), f"member {k}"


def test_freezing_a_member_stops_its_updates_and_leaves_the_others():
    torch.manual_seed(0)
    cfgs = [TrainConfig(optimD="adam"), TrainConfig(optimD="adam")]
    net = StackedLinear(2, 3, 3)
    nn.init.normal_(net.weight)
    opt = PackOptimizer(net, ["adam", "adam"], cfgs)
    opt.freeze([0])
    with torch.no_grad():
        net.weight[0] = math.nan            # even a NaN in the frozen member's slice ...
    before = net.weight.detach().clone()
    opt.zero_grad()
    net(torch.randn(2, 4, 3)).sum().backward()
    opt.step()
    assert torch.isnan(net.weight[0]).all()                     # ... stays there
    assert torch.isfinite(net.weight[1]).all() and not torch.equal(net.weight[1], before[1])
    assert opt.finite().tolist() == [False, True]


def test_score_pack_equals_scorer_score(data, scorer):
    from harness.engine.pack import build_pack
    cfgs = [TrainConfig(family="gan", **TINY), TrainConfig(family="gan", seed=1, **TINY)]
    G, _ = build_pack(cfgs, torch.device("cpu"), "reference")
    seed_of = torch.tensor([0, 1])

    def gens():
        return [torch.Generator().manual_seed(s) for s in (7, 8)]
    scores = score_pack(scorer, generate_pack(G, 2500, 100, gens(), seed_of, torch.device("cpu")), [0, 1], fid=True)
    images = torch.cat(list(generate_pack(G, 2500, 100, gens(), seed_of, torch.device("cpu"))), 1)
    for k in (0, 1):
        got, want = scores[k].to_dict(), scorer.score(images[k]).to_dict()
        assert got.pop("classHist") == want.pop("classHist")  # counts: exact (approx takes no lists in dicts)
        assert got == pytest.approx(want)
    assert G.training


def test_member_order_makes_equal_settings_neighbours():
    cfgs = [TrainConfig(optimD=d, optimG=g, lr=lr)
            for lr in (0.01, 0.001) for d in ("adam", "sgd") for g in ("sgd", "adam")]
    order = member_order(cfgs)
    d_keys = [(cfgs[k].optimD, cfgs[k].lr) for k in order]
    assert len([i for i in range(1, 8) if d_keys[i] != d_keys[i - 1]]) == 3   # 4 blocks for D
    assert sorted(order) == list(range(8))


def test_configs_of_different_shapes_are_refused(data, scorer):
    with pytest.raises(ValueError, match="shape_key"):
        train_pack([TrainConfig(**TINY), TrainConfig(**dict(TINY, sizeG=32))], data, scorer, None, "cpu")


# --- accelerator choices, checked on CPU --------------------------------------------------------

def test_bf16_autocast_only_when_asked_and_on_cuda_only_where_supported():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype(cpu, True) is torch.bfloat16 and autocast_dtype(cpu, False) is None
    assert autocast_dtype(cuda, False) is None
    assert autocast_dtype(cuda, True, bf16_supported=True) is torch.bfloat16
    assert autocast_dtype(cuda, True, bf16_supported=False) is None


def test_dropout_masks_equal_the_reference_on_cpu_and_come_from_one_draw_elsewhere():
    assert dropout_masks_for(torch.device("cpu")) == "reference"
    assert dropout_masks_for(torch.device("cuda")) == "pack"


@pytest.mark.parametrize("switch", ["tf32", "graph"])
def test_cuda_speed_switches_are_refused_on_cpu(switch, data, scorer):
    from harness.engine import Speed, SpeedUnsupported
    cfg = TrainConfig(family="ebgan", **dict(TINY, epochs=0.5))
    with pytest.raises(SpeedUnsupported, match=f"{switch} need a CUDA device"):
        train_pack([cfg], data, scorer, None, "cpu", speed=Speed(**{switch: True}))


@pytest.mark.parametrize("family", ["gan", "ebgan", "lsgan", "wgan_gp", "began"])
def test_bf16_autocast_trains_every_family_on_cpu(family, data, scorer):
    """bf16 autocast through the hand-written backward (its fp32 gradient buffers), batch and
    layer norm, dropout and WGAN-GP's double backward: it runs, stays finite and near fp32."""
    from harness.engine import Speed
    extra = {"wPT": 0.1} if family == "ebgan" else {}
    cfgs = [TrainConfig(family=family, seed=s, optimD=o, dropoutD=True, **dict(TINY, epochs=0.5), **extra)
            for s, o in ((0, "adam"), (1, "sgd"))]
    fp32 = train_pack(cfgs, data, scorer, None, "cpu", record_losses=True)
    bf16 = train_pack(cfgs, data, scorer, None, "cpu", record_losses=True, speed=Speed(bf16=True))
    for a, b in zip(fp32, bf16):
        assert b.status == "ok" and b.steps == a.steps
        first_d, first_g = a.lossHistory[0], b.lossHistory[0]
        assert first_g[0] == pytest.approx(first_d[0], rel=0.05, abs=1e-2)   # step 1's D loss, bf16 vs fp32
        assert first_g[1] == pytest.approx(first_d[1], rel=0.05, abs=1e-2)


def test_compile_is_skipped_with_its_reason_where_a_loss_differentiates_twice(data, scorer):
    from harness.engine import Speed, SpeedUnsupported
    cfg = TrainConfig(family="wgan_gp", **dict(TINY, epochs=0.5))
    with pytest.raises(SpeedUnsupported, match="double backward"):
        train_pack([cfg, replace(cfg, seed=1)], data, scorer, None, "cpu", speed=Speed(compile=True))


def test_compile_draws_dropout_masks_outside_the_compiled_graphs_and_counts_them(data, scorer, monkeypatch):
    """Dynamo's tracing is what breaks graphs; its "eager" backend keeps inductor's C++ builds
    (a minute on 2 cores) out of the suite: `python -m harness.gpucheck --device cpu` compiles for real."""
    import functools

    from harness.engine import Speed
    from harness.engine.cuda import compile_counts
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    cfgs = [TrainConfig(family="gan", seed=s, dropoutD=True, **dict(TINY, epochs=0.25)) for s in (0, 1)]
    eager = train_pack(cfgs, data, scorer, None, "cpu", record_losses=True)
    results = train_pack(cfgs, data, scorer, None, "cpu", record_losses=True, speed=Speed(compile=True))
    counts = compile_counts()
    assert counts["graph_breaks"] == 0 and counts["graphs"] >= 2
    for a, b in zip(eager, results):   # the same masks, the same maths in other kernels
        assert b.status == "ok" and b.lossHistory[0] == pytest.approx(a.lossHistory[0], rel=1e-4)


def test_a_graph_safe_optimizer_freezes_by_mask_exactly_as_the_eager_one():
    """capturable=True (what a CUDA graph of the step needs) zeroes frozen members' gradients with
    a mask that freeze() updates in place; for the members still training it changes nothing.
    (Torch's capturable Adam needs a GPU; SGD shows the mask logic on CPU.)"""
    torch.manual_seed(0)
    nets = []
    for capturable in (False, True):
        net = StackedLinear(3, 4, 5, grad_in_place=False)
        with torch.no_grad():
            net.weight.copy_(torch.arange(60.0).view(3, 5, 4) / 60)
        cfgs = [TrainConfig(optimD="sgd", lr=0.1)] * 3
        opt = PackOptimizer(net, ["sgd"] * 3, cfgs, capturable=capturable)
        x = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(1))
        for step in range(3):
            if step == 1:
                opt.freeze([1])
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
        nets.append(net)
    eager, graph_safe = nets
    assert torch.equal(eager.weight, graph_safe.weight) and torch.equal(eager.bias, graph_safe.bias)
    assert graph_safe.weight[1].abs().sum() == 0 and graph_safe.weight[0].abs().sum() > 0


# --- the benchmark's arithmetic -------------------------------------------------------------------

def test_bench_packs_mix_optimizers_and_the_step_clock_leaves_out_the_first_steps(monkeypatch):
    from harness.engine import StepClock, timing
    from harness.tools.measure import table1_gan_configs
    cfgs = table1_gan_configs("small", 10)
    assert len(cfgs) == 24 and len({c.settings_id for c in cfgs}) == 24 and len({c.shape_key() for c in cfgs}) == 1
    for K in (2, 8, 24):
        kinds = [k for c in cfgs[:K] for k in (c.optimD, c.optimG)]
        assert kinds.count("adam") == kinds.count("sgd")
    assert total_steps(cfgs[0]) == 10 < steps_per_epoch(cfgs[0])   # no epoch end inside the timed steps
    # a device whose first step costs 5 s and every other 0.1 s: the clock reads 0.1 s per step
    now = iter([5.0 + 0.1 * 2, 5.0 + 0.1 * 7])   # read at the start of steps 3 and 8
    monkeypatch.setattr(timing, "clock", lambda device: next(now))
    c = StepClock(3, 8)
    for step in range(12):
        c.tick(step, torch.device("cpu"))
    assert c.seconds_per_step() == pytest.approx(0.1)


def test_every_clock_read_of_a_run_waits_for_the_device(monkeypatch):
    """On CUDA the work is queued: each time the loop reads (loop start, each epoch's scoring,
    training end, wall time) it synchronizes first (harness.engine.timing.sync, a no-op on CPU)."""
    from harness.engine import timing
    synced = []
    monkeypatch.setattr(timing, "sync", lambda device: synced.append(device))
    cfg = TrainConfig(sizeG=16, sizeD=8, trainImages=128, epochs=2, scoreSamples=64, epochScoreSamples=64)
    train(cfg, torch.rand(128, 1024) * 2 - 1, NullScorer(), None, "cpu")
    # loop start, before and after each of the 2 epochs' scoring, training's end, the wall time
    assert len(synced) == 1 + 2 * 2 + 1 + 1
