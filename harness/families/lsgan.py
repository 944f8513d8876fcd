"""LSGAN (Mao et al., "Least Squares Generative Adversarial Networks", 2017): D gives a raw
score per image (no sigmoid) and both players minimise squared distances to target codes.

The codes are Eq. 9's 0-1 coding, a = 0 (fake), b = 1 (real), c = 1 (what G wants D to
believe), constants here rather than grid settings: the study varies the architecture and the
optimizer, not the loss. Model: GAN's D (harness.nets.plain.Discriminator, batch norm).
"""
from __future__ import annotations

import torch

from harness.families.base import Family

A, B, C = 0.0, 1.0, 1.0  # Eq. 9: the 0-1 coding


def d_loss_least_squares(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    # Eq. 2: L_D = 1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2]
    return 0.5 * (real_scores - B).pow(2).mean(-1) + 0.5 * (fake_scores - A).pow(2).mean(-1)


def g_loss_least_squares(fake_scores: torch.Tensor) -> torch.Tensor:
    # Eq. 2: L_G = 1/2 E_z[(D(G(z)) - c)^2]
    return 0.5 * (fake_scores - C).pow(2).mean(-1)


class LSGAN(Family):
    name, title, rank = "lsgan", "LSGAN", 2
    colors = {"LSGAN": "#D55E00"}

    def d_loss(self, D, real, fake, hp, state, draw):
        return d_loss_least_squares(D(real), D(fake))

    def g_loss(self, D, fake, hp, state):
        return g_loss_least_squares(D(fake))


FAMILY = LSGAN()
