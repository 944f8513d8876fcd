"""The paper's losses, each formula once.

Every function reduces over the LAST dimension (the batch), so the same code serves one
model ([B] -> scalar) and a pack of K stacked models ([K, B] -> [K]).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


# --- GAN (Goodfellow et al. 2014) --------------------------------------------------------

def gan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    # BCE with real -> 1, fake -> 0:  -log s(D(x)) - log(1 - s(D(G(z))))
    return F.softplus(-real_logits).mean(-1) + F.softplus(fake_logits).mean(-1)


def gan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    # non-saturating generator loss:  -log s(D(G(z)))
    return F.softplus(-fake_logits).mean(-1)


# --- EBGAN (Zhao et al. 2017) ------------------------------------------------------------

def energy(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    # D(x) = || Dec(Enc(x)) - x ||_2 per sample (SPEC: l2 norm over the 1024 pixels)
    return (reconstruction - x).norm(dim=-1)


def ebgan_d_loss(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin: torch.Tensor | float) -> torch.Tensor:
    # Eq. 1: L_D(x, z) = D(x) + [m - D(G(z))]+
    return energy_real.mean(-1) + F.relu(margin - energy_fake).mean(-1)


def ebgan_g_loss(energy_fake: torch.Tensor) -> torch.Tensor:
    # Eq. 2: L_G(z) = D(G(z))
    return energy_fake.mean(-1)


def pulling_away(code: torch.Tensor) -> torch.Tensor:
    # Eq. 7: f_PT(S) = 1/(N(N-1)) sum_i sum_{j!=i} (S_i . S_j / (|S_i| |S_j|))^2,  S: [..., N, s]
    n = code.shape[-2]
    s = F.normalize(code, dim=-1)
    cos2 = (s @ s.transpose(-1, -2)).pow(2)
    off_diagonal = cos2.sum((-1, -2)) - cos2.diagonal(dim1=-2, dim2=-1).sum(-1)
    return off_diagonal / (n * (n - 1))
