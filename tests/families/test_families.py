"""The family plugins: registry, losses against hand-computed values, configs, and each new
family (LSGAN, WGAN-GP, BEGAN) end to end on real MNIST, packed members bit-equal to their
reference runs on CPU."""
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from harness import families
from harness.config import TrainConfig, total_steps
from harness.engine import train, train_pack
from harness.families import began, lsgan, wgan_gp
from harness.nets import build as build_models
from harness.nets import linear_weights
from harness.nets.plain import LayerNorm
from harness.plan import make_packs
from harness.rows import row_for

# 640 images / 64 = 10 steps per epoch, 2 epochs; BN (or LN) in G and D (3 layers each); widths
# that are not multiples of 32, where a transposed gradient once rounded differently
TINY = dict(nLayerG=3, nLayerD=3, sizeG=48, sizeD=16, trainImages=640, epochs=2,
            scoreSamples=300, epochScoreSamples=100)
LOSS_RTOL = 1e-5
SCORE_TOL = 1e-4


# --- the registry ------------------------------------------------------------------------------

def test_registry_has_the_five_families_with_distinct_labels_and_colours():
    assert families.names() == ["gan", "ebgan", "lsgan", "wgan_gp", "began"]
    colors = families.colors()
    assert list(colors) == ["GAN", "EBGAN", "EBGAN-PT", "LSGAN", "WGAN-GP", "BEGAN"]
    assert len(set(colors.values())) == len(colors)
    from harness.report.style import palette
    assert palette() == colors and palette(["HINGE"])["HINGE"] not in colors.values()


def test_a_setting_name_is_one_familys_only():
    class Clash(families.Family):
        name, colors, settings = "clash", {"CLASH": "#000000"}, {"margin": 1.0}
    with pytest.raises(ValueError, match="margin.*ebgan"):
        families.register(Clash())
    assert families.find("clash") is None


# --- configs -----------------------------------------------------------------------------------

def test_config_ids_of_table1_configs_did_not_change():
    """Results computed before families were plugins are keyed by these ids."""
    smoke = dict(nLayerG=2, nLayerD=2, sizeG=32, sizeD=16, dropoutD=True, optimD="adam", optimG="sgd",
                 lr=0.001, epochs=1, trainImages=2000, scoreSamples=1000, epochScoreSamples=200)
    assert TrainConfig(family="gan", **smoke).config_id == "74e7e1dd2603d26c"
    assert TrainConfig(family="gan", **smoke).settings_id == "71a35dee4f736ca0"
    eb = dict(smoke, nLayerD=3, dropoutD=False, optimG="adam")
    assert TrainConfig(family="ebgan", **eb).config_id == "f46e147e2e3903e9"
    assert TrainConfig(family="ebgan", wPT=0.1, **eb).config_id == "4345156275d0bb8c"


def test_family_settings_defaults_attributes_and_null_elsewhere():
    w = TrainConfig(family="wgan_gp", **TINY)
    assert (w.lambdaGP, w.nCritic, w.model) == (10.0, 5, "WGAN-GP")
    assert TrainConfig(family="began", gamma=0.7).subgrid == "adam/adam/lr=0.001/gamma=0.7"
    gan = TrainConfig(family="gan")
    row = row_for(gan, "g", {})
    assert "margin" not in row and "wPT" not in row and "lambdaGP" not in row
    with pytest.raises(AttributeError):
        _ = gan.margin
    with pytest.raises(ValueError, match="wPT: not a setting of gan"):
        TrainConfig(family="gan", wPT=0.1)
    for cfg in (w, TrainConfig(family="ebgan", wPT=0.1), gan):       # other families' columns (null) ignored
        nulls = {k: math.nan for f in families.all() if f.name != cfg.family for k in f.settings}
        assert TrainConfig.from_dict({**cfg.to_dict(), **nulls}) == cfg
    with pytest.raises(ValueError, match="lambdaGP: nan must be >= 0"):
        TrainConfig(family="wgan_gp", lambdaGP=math.nan)
    assert replace(w, nCritic=2).nCritic == 2 and replace(w, seed=3).lambdaGP == 10.0
    assert w.shape_key() != replace(w, nCritic=2).shape_key() == replace(w, nCritic=2, lambdaGP=1.0).shape_key()


def test_d_heads_and_the_critics_layer_norm():
    assert linear_weights(TrainConfig(family="began"))[1] == linear_weights(TrainConfig(family="ebgan"))[1]
    assert linear_weights(TrainConfig(family="wgan_gp"))[1] == linear_weights(TrainConfig(family="gan"))[1]
    _, D = build_models(TrainConfig(family="wgan_gp", nLayerD=3))
    kinds = [type(m).__name__ for m in D.modules() if not isinstance(m, nn.Sequential)][1:]
    assert kinds == ["Linear", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]   # no batch norm
    ln = LayerNorm(8)
    nn.init.normal_(ln.weight)
    ref = nn.LayerNorm(8)
    ref.load_state_dict(ln.state_dict())
    x = torch.randn(4, 8)
    torch.testing.assert_close(ln(x), ref(x))          # nn.LayerNorm's maths
    x = torch.randn(5, 8)
    assert torch.allclose(ln(x[:1]), ln(x)[:1])           # per sample: no batch statistics


# --- losses by hand ----------------------------------------------------------------------------

def test_lsgan_losses_hand_computed():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 2.0])
    # D: 1/2 mean((1-1)^2, (0-1)^2) + 1/2 mean(0.5^2, 2^2) = 0.25 + 1.0625
    assert lsgan.d_loss_least_squares(real, fake).item() == pytest.approx(0.25 + 1.0625)
    assert lsgan.g_loss_least_squares(fake).item() == pytest.approx(0.5 * (0.25 + 1) / 2)


def test_wgan_gp_penalty_of_a_linear_critic():
    # D(x) = w.x has gradient w everywhere: the penalty is (|w| - 1)^2, whatever eps draws
    w = torch.tensor([3.0, 4.0])
    D = lambda x: x @ w  # noqa: E731
    real, fake = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 2)

    class Draw:
        def rand(self, *shape):
            return torch.rand(*shape)
    hp = type("hp", (), {"lambdaGP": torch.tensor(10.0)})()
    loss = wgan_gp.FAMILY.d_loss(D, real, fake, hp, {}, Draw())
    assert loss.item() == pytest.approx(0 - 3.5 + 10 * (5 - 1) ** 2)
    assert wgan_gp.g_loss_critic(torch.tensor([1.0, 2.0])).item() == -1.5


def test_began_k_control_and_convergence_measure():
    fam = began.FAMILY
    hp = type("hp", (), {"gamma": torch.tensor(0.5), "lambdaK": torch.tensor(0.1)})()
    state = fam.init_state(hp)
    assert state["k"].item() == 0                                    # k_0 = 0
    ae = lambda x: (x * 0, None)  # noqa: E731  reconstructs nothing: L(v) = mean |v|
    real, fake = torch.full((2, 4), 2.0), torch.full((2, 4), 0.5)
    assert fam.d_loss(ae, real, fake, hp, state, None).item() == pytest.approx(2.0)   # L(x) - 0 L(G(z))
    assert fam.g_loss(ae, fake, hp, state).item() == pytest.approx(0.5)
    # balance = 0.5 * 2 - 0.5 = 0.5:  k = 0 + 0.1 * 0.5;  M = 2 + 0.5
    assert state["k"].item() == pytest.approx(0.05) and state["M"].item() == pytest.approx(2.5)
    assert fam.d_loss(ae, real, fake, hp, state, None).item() == pytest.approx(2.0 - 0.05 * 0.5)
    big = fam.init_state(type("hp", (), {"gamma": torch.tensor(1.0), "lambdaK": torch.tensor(100.0)})())
    fam.d_loss(ae, real, fake, hp, big, None)
    fam.g_loss(ae, fake, type("hp", (), {"gamma": torch.tensor(1.0), "lambdaK": torch.tensor(100.0)})(), big)
    assert big["k"].item() == 1.0                                    # clipped to [0, 1]


# --- end to end on real MNIST, packed against the reference ---------------------------------------

PACKS = {
    "LSGAN": [TrainConfig(family="lsgan", optimD="adam", optimG="sgd", lr=0.001, dropoutD=True, **TINY),
              TrainConfig(family="lsgan", optimD="sgd", optimG="adam", lr=0.01, seed=1, **TINY)],
    "WGAN-GP": [TrainConfig(family="wgan_gp", nCritic=2, adamBeta1=0.0, adamBeta2=0.9, lr=0.0001, **TINY),
                TrainConfig(family="wgan_gp", nCritic=2, lambdaGP=1.0, optimG="sgd", dropoutD=True, seed=1, **TINY)],
    "BEGAN": [TrainConfig(family="began", gamma=0.5, **TINY),
              TrainConfig(family="began", gamma=0.3, lambdaK=0.01, optimD="sgd", lr=0.01, dropoutD=True, seed=2,
                          **TINY)],
}


@pytest.fixture(scope="module")
def reference(data, scorer):
    runs = {}

    def run(cfg):
        if cfg not in runs:
            runs[cfg] = train(cfg, data, scorer, None, "cpu", record_losses=True)
        return runs[cfg]
    return run


@pytest.mark.parametrize("model", PACKS)
def test_each_family_trains_end_to_end_and_packs_bit_equal(model, data, scorer, reference, tmp_path):
    pack = PACKS[model]
    results = train_pack(pack, data, scorer, tmp_path, "cpu", record_losses=True)
    for cfg, member in zip(pack, results):
        ref = reference(cfg)
        assert cfg.model == model and ref.status == "ok" and ref.steps == total_steps(cfg) == 20
        assert math.isfinite(ref.Iprime) and math.isfinite(ref.fid) and len(ref.IprimePerEpoch) == 2
        got, want = torch.tensor(member.lossHistory), torch.tensor(ref.lossHistory)
        torch.testing.assert_close(got, want, rtol=LOSS_RTOL, atol=0)
        assert member.IprimePerEpoch == pytest.approx(ref.IprimePerEpoch, abs=SCORE_TOL)
        assert member.Iprime == pytest.approx(ref.Iprime, abs=SCORE_TOL)
        assert member.classHist == ref.classHist and member.steps == ref.steps
        assert member.epochMetrics == ref.epochMetrics
        assert (tmp_path / f"{cfg.config_id}.png").is_file()


def test_wgan_gp_updates_g_once_per_n_critic_steps(reference):
    cfg = PACKS["WGAN-GP"][0]
    losses_g = [g for _, g in reference(cfg).lossHistory]
    assert losses_g[0] == 0.0 and losses_g[1] != 0.0               # G's first step comes after 2 critic steps
    assert all(losses_g[i] == losses_g[i + 1] for i in range(1, 19, 2))   # and then every 2nd step


def test_began_records_m_and_k_per_epoch(reference):
    cfg = PACKS["BEGAN"][0]
    r = reference(cfg)
    assert set(r.epochMetrics) == {"M", "k"} and len(r.epochMetrics["M"]) == 2
    assert all(m > 0 for m in r.epochMetrics["M"]) and all(0 <= k <= 1 for k in r.epochMetrics["k"])
    row = r.to_row()
    assert row["MPerEpoch"] == r.epochMetrics["M"] and "epochMetrics" not in row


def test_an_unpackable_family_trains_in_packs_of_one_and_the_dry_run_says_so(monkeypatch):
    from pathlib import Path

    from harness.grid import load_grid
    from harness.sweep import dry_run_report
    grid = load_grid(Path(__file__).resolve().parents[2] / "grids" / "smoke_families.yaml")
    assert "not packable" not in dry_run_report(grid, set())
    monkeypatch.setattr(families.get("wgan_gp"), "packs", False)
    lines = dry_run_report(grid, set()).splitlines()
    assert [l.split()[0] for l in lines if "not packable" in l] == ["WGAN-GP"]
    cfgs = ([replace(PACKS["WGAN-GP"][0], seed=s) for s in range(3)]
            + [PACKS["LSGAN"][0], replace(PACKS["LSGAN"][0], seed=5)])
    assert sorted(len(p) for p in make_packs(cfgs, 8)) == [1, 1, 1, 2]
    with pytest.raises(ValueError, match="does not pack"):
        train_pack(cfgs[:2], torch.zeros(640, 1024), None)
