"""The networks' settings: normG / normD (which hidden normalization) and initStdG / initStdD (the
init's stds), Appendix C's by default; a family's own D norm (WGAN-GP's, BEGAN's) wins over normD."""

import pytest
import torch
from torch import nn

from harness import families
from harness.config import TrainConfig
from harness.engine.pack import load_member, normal_per_member
from harness.nets import build as build_models
from harness.nets import build_stacked
from harness.nets.plain import LayerNorm
from harness.nets.stacked import DropoutRNG, StackedBatchNorm, StackedLayerNorm

NORM_KINDS = (nn.BatchNorm1d, LayerNorm, nn.LayerNorm)


def kinds(m: nn.Module) -> list[str]:
    return [type(x).__name__ for x in m.modules() if not isinstance(x, (nn.Sequential, type(m)))]


def norms(m: nn.Module) -> list[str]:
    return [type(x).__name__ for x in m.modules() if isinstance(x, NORM_KINDS)]


def weights(m: nn.Module) -> torch.Tensor:
    return torch.cat([x.weight.flatten() for x in m.modules() if isinstance(x, nn.Linear)])


def test_the_defaults_are_appendix_cs_nets():
    cfg = TrainConfig()
    assert (cfg.normG, cfg.normD, cfg.initStdG, cfg.initStdD) == ("batch", "batch", 0.02, 0.002)
    G, D = build_models(TrainConfig(nLayerG=3, nLayerD=3))
    assert norms(G) == ["BatchNorm1d"] * 2 and norms(D) == ["BatchNorm1d"]


@pytest.mark.parametrize("family", ["gan", "ebgan"])
def test_norm_none_builds_g_and_d_without_normalization(family):
    G, D = build_models(TrainConfig(family=family, nLayerG=4, nLayerD=4, normG="none", normD="none"))
    assert norms(G) == [] and norms(D) == []
    assert kinds(G) == ["Linear", "ReLU"] * 3 + ["Linear", "Tanh"]
    assert len([m for m in D.modules() if isinstance(m, nn.Linear)]) == 4


@pytest.mark.parametrize("family", ["gan", "ebgan"])
def test_norm_layer_puts_layer_norms_where_batch_norms_were(family):
    cfg = dict(family=family, nLayerG=3, nLayerD=4, sizeD=32)
    G, D = build_models(TrainConfig(normG="layer", normD="layer", **cfg))
    G_bn, D_bn = build_models(TrainConfig(**cfg))
    assert kinds(G) == [k.replace("BatchNorm1d", "LayerNorm") for k in kinds(G_bn)]
    assert kinds(D) == [k.replace("BatchNorm1d", "LayerNorm") for k in kinds(D_bn)]
    assert norms(G) == ["LayerNorm"] * 2 and norms(D) == ["LayerNorm"] * 2
    G, D = build_models(TrainConfig(normD="layer", **cfg))      # one of them only
    assert norms(G) == ["BatchNorm1d"] * 2 and norms(D) == ["LayerNorm"] * 2


def test_init_stds_are_the_configs():
    torch.manual_seed(0)
    G, D = build_models(TrainConfig(nLayerG=3, nLayerD=3, sizeG=1024, sizeD=1024, initStdG=0.05, initStdD=0.02))
    assert weights(D).std().item() == pytest.approx(0.02, rel=0.01)
    assert weights(G).std().item() == pytest.approx(0.05, rel=0.01)
    assert all((m.bias == 0).all() for m in (*G.modules(), *D.modules()) if isinstance(m, nn.Linear))


def test_the_default_init_is_drawn_as_before_the_settings():
    """initStdG / initStdD at their defaults draw the very weights the constants did."""
    torch.manual_seed(3)
    G, D = build_models(TrainConfig(nLayerD=3, sizeD=64))
    torch.manual_seed(3)
    G_old, D_old = build_models(TrainConfig(nLayerD=3, sizeD=64, initStdG=0.02, initStdD=0.002))
    assert torch.equal(weights(G), weights(G_old)) and torch.equal(weights(D), weights(D_old))


def test_a_family_that_declares_its_d_norm_keeps_it_whatever_normd_says():
    for normD in ("batch", "none", "layer"):
        cfg = TrainConfig(family="wgan_gp", nLayerD=3, normD=normD)
        assert cfg.norm_d == "layer" and norms(build_models(cfg)[1]) == ["LayerNorm"]
        cfg = TrainConfig(family="began", nLayerD=3, normD=normD)
        assert cfg.norm_d == "none" and norms(build_models(cfg)[1]) == []
    assert families.norm_override("wgan_gp", TrainConfig(family="wgan_gp").normD) == \
        "WGAN-GP trains D with its own layer norm (normD 'batch' of the grid does not apply)"
    assert families.norm_override("began", "layer") == \
        "BEGAN trains D with no normalization (normD 'layer' of the grid does not apply)"
    assert families.norm_override("wgan_gp", "layer") is None  # nothing overridden
    # the config's normG still applies to their G
    assert norms(build_models(TrainConfig(family="wgan_gp", nLayerG=3, normG="none"))[0]) == []


@pytest.mark.parametrize("family", ["gan", "lsgan", "ebgan"])
def test_families_without_a_d_norm_of_their_own_train_normd(family):
    assert families.get(family).d_norm is None
    cfg = TrainConfig(family=family, nLayerD=3, normD="none")
    assert cfg.norm_d == "none" and norms(build_models(cfg)[1]) == []
    assert families.norm_override(cfg.family, cfg.normD) is None


@pytest.mark.parametrize("normG, normD", [("none", "none"), ("layer", "batch"), ("batch", "layer")])
@pytest.mark.parametrize("family", ["gan", "ebgan"])
def test_stacked_models_have_the_members_norms_and_take_their_weights(family, normG, normD):
    cfgs = [TrainConfig(family=family, nLayerG=3, nLayerD=3, sizeG=16, sizeD=8, normG=normG, normD=normD, seed=s)
            for s in (0, 1)]
    G, D = build_stacked(cfgs, DropoutRNG("reference", torch.device("cpu"), 0))
    stacked = {"batch": StackedBatchNorm, "layer": StackedLayerNorm}
    for net, norm, n in ((G, normG, 2), (D, normD, 1)):
        got = [type(m) for m in net.modules() if isinstance(m, (StackedBatchNorm, StackedLayerNorm))]
        assert got == ([stacked[norm]] * n if norm != "none" else [])
    for k, cfg in enumerate(cfgs):      # each member's reference models fit the pack's slices
        torch.manual_seed(cfg.seed)
        G_k, D_k = build_models(cfg)
        load_member(G, k, G_k)
        load_member(D, k, D_k)


def test_random_pack_init_draws_each_member_with_its_own_std():
    torch.manual_seed(0)
    w = torch.zeros(3, 512, 512)
    normal_per_member(w, [0.02, 0.002, 0.1])
    assert [round(s, 3) for s in w.flatten(1).std(1).tolist()] == [0.02, 0.002, 0.1]
    torch.manual_seed(0)
    one = torch.zeros(2, 64, 64)
    normal_per_member(one, [0.02, 0.02])            # equal stds: one draw for the stack, as before
    torch.manual_seed(0)
    assert torch.equal(one, nn.init.normal_(torch.zeros(2, 64, 64), 0.0, 0.02))
