"""The paper's models (Appendix C's structure), built from what each family declares."""

import pytest
import torch
from torch import nn

from harness.config import TrainConfig
from harness.nets import build as build_models
from harness.nets.plain import AutoEncoderD, Discriminator, Generator


def linears(m: nn.Module) -> list[nn.Linear]:
    return [x for x in m.modules() if isinstance(x, nn.Linear)]


def layer_kinds(seq: nn.Sequential) -> list[str]:
    return [type(x).__name__ for x in seq]


# --- structure ---------------------------------------------------------------------------

def test_generator_structure():
    G = Generator(nz=100, nLayerG=3, sizeG=400, dim=1024)
    assert layer_kinds(G.net) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU",
                                  "Linear", "Tanh"]  # no BN on the output layer; tanh at the end
    assert [(l.in_features, l.out_features) for l in linears(G)] == [(100, 400), (400, 400), (400, 1024)]


def test_gan_discriminator_structure_with_dropout():
    D = Discriminator(nLayerD=3, sizeD=128, dropout=0.5, dim=1024)
    # no BN on the input layer, none on the scalar output
    assert layer_kinds(D.net) == ["Linear", "ReLU", "Dropout", "Linear", "BatchNorm1d", "ReLU", "Dropout",
                                  "Linear"]
    assert D(torch.zeros(5, 1024)).shape == (5,)


def test_ebgan_nlayerd2_is_one_encoder_and_one_decoder_layer():
    G, D = build_models(TrainConfig(family="ebgan", nLayerD=2, sizeD=256))
    assert isinstance(D, AutoEncoderD)
    assert layer_kinds(D.encoder) == ["Linear", "ReLU"] and isinstance(D.code_dropout, nn.Identity)
    assert (D.decoder.in_features, D.decoder.out_features) == (256, 1024)
    recon, code = D(torch.randn(4, 1024))
    assert recon.shape == (4, 1024) and code.shape == (4, 256)


def test_ebgan_nlayerd4_encoder_has_three_layers_and_bn_after_the_first():
    _, D = build_models(TrainConfig(family="ebgan", nLayerD=4, sizeD=128))
    assert layer_kinds(D.encoder) == ["Linear", "ReLU", "Linear", "BatchNorm1d", "ReLU",
                                      "Linear", "BatchNorm1d", "ReLU"]
    assert len(linears(D)) == 4


def test_the_code_is_taken_before_dropout_and_the_decoder_sees_it_after():
    torch.manual_seed(0)
    _, D = build_models(TrainConfig(family="ebgan", nLayerD=3, sizeD=64, dropoutD=True, dropoutRate=0.5))
    assert layer_kinds(D.encoder) == ["Linear", "ReLU", "Dropout", "Linear", "BatchNorm1d", "ReLU"]
    assert isinstance(D.code_dropout, nn.Dropout)
    recon, code = D(torch.randn(16, 1024))
    assert (code > 0).float().mean() > 0.3        # ReLU output, no unit zeroed by a mask
    D.eval()
    recon_eval, code_eval = D(torch.randn(16, 1024))
    torch.testing.assert_close(recon_eval, D.decoder(code_eval))


@pytest.mark.parametrize("family", ["gan", "ebgan"])
def test_layer_counts_and_init_stds(family):
    torch.manual_seed(0)
    cfg = TrainConfig(family=family, nLayerG=5, nLayerD=3, sizeG=1600, sizeD=1024, dropoutD=True)
    G, D = build_models(cfg)
    assert len(linears(G)) == 5 and len(linears(D)) == 3
    g_w = torch.cat([l.weight.flatten() for l in linears(G)])
    d_w = torch.cat([l.weight.flatten() for l in linears(D)])
    assert g_w.std().item() == pytest.approx(0.02, rel=0.01)
    assert d_w.std().item() == pytest.approx(0.002, rel=0.01)
    assert all((l.bias == 0).all() for l in linears(G) + linears(D))


def test_began_d_is_an_auto_encoder_without_batch_norm_as_in_its_paper():
    _, D = build_models(TrainConfig(family="began", nLayerD=4, sizeD=64))
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)) for m in D.modules())
    assert layer_kinds(D.encoder) == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "ReLU"]
    _, D = build_models(TrainConfig(family="ebgan", nLayerD=4, sizeD=64))
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in D.modules()) == 2
