"""The families' losses against hand-computed values, for one model and for a pack of K, and the
formulas that stay fp32 under bf16 autocast."""
import math

import pytest
import torch

from harness.families import ebgan, gan

# --- losses --------------------------------------------------------------------------------

def test_gan_losses_hand_computed():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    want_d = (-math.log(sig(2)) - math.log(sig(0))) / 2 + (-math.log(1 - sig(-1)) - math.log(1 - sig(1))) / 2
    want_g = (-math.log(sig(-1)) - math.log(sig(1))) / 2
    assert gan.d_loss_bce(real, fake).item() == pytest.approx(want_d, rel=1e-6)
    assert gan.g_loss_non_saturating(fake).item() == pytest.approx(want_g, rel=1e-6)


def test_energy_is_per_sample_l2_norm():
    x = torch.zeros(2, 4)
    recon = torch.tensor([[3.0, 4.0, 0, 0], [1.0, 1.0, 1.0, 1.0]])
    assert ebgan.energy(x, recon).tolist() == pytest.approx([5.0, 2.0])


def test_ebgan_margin_losses_hand_computed():
    e_real, e_fake = torch.tensor([1.0, 3.0]), torch.tensor([4.0, 12.0])
    # D: mean(1, 3) + mean([10-4]+, [10-12]+) = 2 + (6 + 0)/2 = 5
    assert ebgan.d_loss_margin(e_real, e_fake, 10.0).item() == pytest.approx(5.0)
    assert ebgan.g_loss_energy(e_fake).item() == pytest.approx(8.0)


def test_pulling_away_hand_computed():
    S = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    # cos^2 pairs: (1,2)=0, (1,3)=1/2, (2,3)=1/2, each counted twice, over N(N-1)=6
    assert ebgan.pulling_away(S).item() == pytest.approx(2 / 6)
    assert ebgan.pulling_away(torch.ones(5, 3)).item() == pytest.approx(1.0)  # all alike: 1


def test_losses_reduce_over_the_last_dim_for_packs():
    e_real, e_fake = torch.rand(3, 8), torch.rand(3, 8) * 20
    packed = ebgan.d_loss_margin(e_real, e_fake, torch.tensor([[10.0], [5.0], [1.0]]))
    for k, m in enumerate([10.0, 5.0, 1.0]):
        assert packed[k].item() == pytest.approx(ebgan.d_loss_margin(e_real[k], e_fake[k], m).item())
    S = torch.randn(3, 8, 4)
    assert ebgan.pulling_away(S)[1].item() == pytest.approx(ebgan.pulling_away(S[1]).item(), rel=1e-5)


# --- bf16: the formulas that measure a small difference run in fp32 ------------------------------

def test_energy_pulling_away_and_gradient_norm_stay_fp32_under_bf16_autocast():
    """Under autocast, G's fakes and D's reconstructions and codes arrive in bf16. Where the
    formula is a small difference (an image minus its reconstruction; cosines squared, then the
    diagonal taken off; a gradient's norm minus 1) it is computed in fp32 from those values, so it
    equals the float64 answer on the same bf16 inputs; computed in bf16 it would not."""
    from harness.families import wgan_gp
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 1024, generator=g) * 2 - 1).bfloat16()
    recon = (x.float() + 0.01 * torch.randn(64, 1024, generator=g)).bfloat16()
    code = torch.randn(64, 32, generator=g).bfloat16()                 # f_PT ~ 1/32: a small sum off the diagonal
    grad = (torch.randn(64, 1024, generator=g) / 32).bfloat16()         # norms near 1
    scores = torch.randn(2, 64, generator=g).bfloat16()

    def f64_energy():
        return (recon.double() - x.double()).norm(dim=-1)

    def f64_pt():
        s = code.double() / code.double().norm(dim=-1, keepdim=True)
        c2 = (s @ s.T).pow(2)
        return (c2.sum() - c2.diagonal().sum()) / (64 * 63)

    def f64_critic():
        penalty = (grad.double().norm(dim=-1) - 1).pow(2).mean()
        return scores[1].double().mean() - scores[0].double().mean() + 10 * penalty

    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ebgan.energy(x, recon), ebgan.pulling_away(code), wgan_gp.critic_loss(scores[0], scores[1], grad, 10.0)
        naive_pt = (lambda s: ((s @ s.T).pow(2).sum() - (s @ s.T).pow(2).diagonal().sum()) / (64 * 63))(
            torch.nn.functional.normalize(code, dim=-1))
        naive_energy = (recon - x).norm(dim=-1)
    assert all(t.dtype == torch.float32 for t in got)
    assert torch.allclose(got[0].double(), f64_energy(), rtol=1e-5)
    assert float(got[1]) == pytest.approx(float(f64_pt()), rel=1e-4)
    assert float(got[2]) == pytest.approx(float(f64_critic()), rel=1e-4)
    # what bf16 would have given
    assert abs(float(naive_pt) - float(f64_pt())) > 1e-3 * float(f64_pt())
    assert not torch.allclose(naive_energy.double(), f64_energy(), rtol=1e-3)
