"""WGAN-GP (Gulrajani et al., "Improved Training of Wasserstein GANs", 2017): a critic D with
a gradient penalty on points between real and fake samples, several critic steps per G step.

Settings: lambdaGP (lambda of Eq. 3, default 10) and nCritic (critic steps per G step,
default 5), Algorithm 1's defaults. Algorithm 1's Adam (lr 1e-4, betas (0, 0.9)) is not a
family default: optimizer settings are the grid's (see grids/table1_families.yaml).

The critic: GAN's fully connected D with one output, but LAYER norm where GAN's D has batch
norm (harness.nets.plain.LayerNorm, at the same places), whatever the config's normD says
(`d_norm`: families.norm_override tells the report). The penalty is per sample, and batch
norm would make each sample's critic value, and so its gradient, depend on the others of the
batch; the paper drops batch norm from the critic and suggests layer norm in its place.

Steps: an epoch is a pass of the critic over the training set, as for every family, so G
takes one step per nCritic critic steps, on a fresh z (Algorithm 1, line 11). The penalty
differentiates the critic's input gradient (a double backward): packs use plain-autograd
stacked linears for it (`needs_double_backward`), bit-equal to the reference on CPU.
"""
from __future__ import annotations

import torch

from harness.families.base import Family, fp32


@fp32
def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, grad_xhat: torch.Tensor,
                lam: torch.Tensor | float) -> torch.Tensor:
    # Eq. 3: L = E[D(G(z))] - E[D(x)] + lambda E[(||grad_xhat D(xhat)||_2 - 1)^2]
    penalty = (grad_xhat.norm(2, dim=-1) - 1).pow(2).mean(-1)
    return fake_scores.mean(-1) - real_scores.mean(-1) + lam * penalty


def g_loss_critic(fake_scores: torch.Tensor) -> torch.Tensor:
    # Algorithm 1, line 12: G minimises -E[D(G(z))]
    return -fake_scores.mean(-1)


class WGANGP(Family):
    name, title, rank = "wgan_gp", "WGAN-GP", 3
    settings = {"lambdaGP": 10.0, "nCritic": 5}
    shape_settings = ("nCritic",)          # it shapes the loop: configs that differ do not pack
    colors = {"WGAN-GP": "#CC79A7"}
    d_norm = "layer"
    needs_double_backward = True

    def problems(self, s):
        return ([f"lambdaGP: {s['lambdaGP']} must be >= 0"] if not s["lambdaGP"] >= 0 else []) + \
               ([f"nCritic: {s['nCritic']} must be >= 1"] if not s["nCritic"] >= 1 else [])

    def d_steps(self, s):
        return s["nCritic"]

    def d_loss(self, D, real, fake, hp, state, draw):
        eps = draw.rand(real.shape[-2], 1)           # Algorithm 1, line 4: eps ~ U[0, 1], one per sample
        xhat = (eps * real + (1 - eps) * fake).requires_grad_(True)   # line 6
        grad, = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
        return critic_loss(D(real), D(fake), grad, hp.lambdaGP)

    def g_loss(self, D, fake, hp, state):
        return g_loss_critic(D(fake))


FAMILY = WGANGP()
