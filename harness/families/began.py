"""BEGAN (Berthelot et al., "BEGAN: Boundary Equilibrium Generative Adversarial Networks",
2017): EBGAN's auto-encoder D with an l1 reconstruction loss, and a proportional control k_t
that keeps L(G(z)) at gamma times L(x).

Settings: gamma (the diversity ratio; the paper shows 0.3, 0.5 and 0.7) and lambdaK (k's
learning rate, the paper's 0.001). k_0 = 0. Model: EBGAN's auto-encoder D (harness.nets.plain),
without batch norm, whatever the config's normD says (`d_norm`): the BEGAN paper's auto-encoder
has none (its D must reconstruct each image alone, and batch norm would make a sample's
reconstruction, so its loss, depend on the batch).

When k moves: after each G step, from L(x) of that step's D loss and L(G(z)) of its G loss
(the paper's k_{t+1} = k_t + lambda_k (gamma L(x) - L(G(z_G)))), then used by the next D step.
The convergence measure M (Sec. 3.4.1) is computed at every G step; the result columns
MPerEpoch and kPerEpoch hold their means over each epoch's steps.
"""
from __future__ import annotations

import torch

from harness.families.base import Family


def reconstruction_l1(v: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    # Eq. 1 with eta = 1: L(v) = |v - D(v)|, the mean absolute pixel error, per sample
    return (v - reconstruction).abs().mean(-1)


class BEGAN(Family):
    name, title, rank = "began", "BEGAN", 4
    settings = {"gamma": 0.5, "lambdaK": 0.001}
    colors = {"BEGAN": "#000000"}
    d_head = "autoencoder"
    d_norm = "none"
    epoch_metrics = ("M", "k")

    def problems(self, s):
        return ([f"gamma: {s['gamma']} must be in [0, 1]"] if not 0 <= s["gamma"] <= 1 else []) + \
               ([f"lambdaK: {s['lambdaK']} must be >= 0"] if not s["lambdaK"] >= 0 else [])

    def subgrid(self, s):
        return f"{super().subgrid(s)}/gamma={s['gamma']:g}"

    def init_state(self, hp):
        # k_0 = 0. Updated in place (copy_), so that a CUDA graph of the step keeps them current.
        return {name: torch.zeros_like(hp.gamma) for name in ("k", "L_real", "M")}

    def d_loss(self, D, real, fake, hp, state, draw):
        l_real = reconstruction_l1(real, D(real)[0]).mean(-1)
        l_fake = reconstruction_l1(fake, D(fake)[0]).mean(-1)
        state["L_real"].copy_(l_real.detach())
        # Sec. 3.4: L_D = L(x) - k_t L(G(z_D))
        return l_real - state["k"] * l_fake

    def g_loss(self, D, fake, hp, state):
        l_fake = reconstruction_l1(fake, D(fake)[0]).mean(-1)   # Sec. 3.4: L_G = L(G(z_G))
        with torch.no_grad():
            balance = hp.gamma * state["L_real"] - l_fake
            # Sec. 3.4: k_{t+1} = k_t + lambda_k (gamma L(x) - L(G(z_G))), kept in [0, 1]
            state["k"].copy_((state["k"] + hp.lambdaK * balance).clamp(0, 1))
            # Sec. 3.4.1: M_global = L(x) + |gamma L(x) - L(G(z_G))|
            state["M"].copy_(state["L_real"] + balance.abs())
        return l_fake


FAMILY = BEGAN()
