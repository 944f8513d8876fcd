"""EBGAN and EBGAN-PT (Zhao, Mathieu, LeCun 2017): D is an auto-encoder, its energy the l2
norm of the reconstruction error; EBGAN-PT adds the pulling-away term to G's loss (wPT > 0).

Settings: margin (m of Eq. 1; the paper fixes 10), wPT (the pulling-away weight; 0 is EBGAN,
the paper's EBGAN-PT uses 0.1). Model: harness.nets.plain.AutoEncoderD (nLayerD - 1 encoder
layers + one decoder layer); f_PT sees the encoder's output before dropout.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.families.base import Family, fp32


@fp32
def energy(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    # D(x) = || Dec(Enc(x)) - x ||_2 per sample (SPEC: l2 norm over the 1024 pixels)
    return (reconstruction - x).norm(dim=-1)


def d_loss_margin(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin: torch.Tensor | float) -> torch.Tensor:
    # Eq. 1: L_D(x, z) = D(x) + [m - D(G(z))]+
    return energy_real.mean(-1) + F.relu(margin - energy_fake).mean(-1)


def g_loss_energy(energy_fake: torch.Tensor) -> torch.Tensor:
    # Eq. 2: L_G(z) = D(G(z))
    return energy_fake.mean(-1)


@fp32
def pulling_away(code: torch.Tensor) -> torch.Tensor:
    # Eq. 7: f_PT(S) = 1/(N(N-1)) sum_i sum_{j!=i} (S_i . S_j / (|S_i| |S_j|))^2,  S: [..., N, s]
    n = code.shape[-2]
    s = F.normalize(code, dim=-1)
    cos2 = (s @ s.transpose(-1, -2)).pow(2)
    off_diagonal = cos2.sum((-1, -2)) - cos2.diagonal(dim1=-2, dim2=-1).sum(-1)
    return off_diagonal / (n * (n - 1))


class EBGAN(Family):
    name, title, rank = "ebgan", "EBGAN", 1
    settings = {"margin": 10.0, "wPT": 0.0}
    colors = {"EBGAN": "#E69F00", "EBGAN-PT": "#009E73"}
    d_head = "autoencoder"

    def problems(self, s):
        return [f"{k}: {s[k]} must be >= 0" for k in ("margin", "wPT") if not s[k] >= 0]

    def model(self, s):
        return "EBGAN-PT" if s["wPT"] > 0 else "EBGAN"

    def d_loss(self, D, real, fake, hp, state, draw):
        (recon_real, _), (recon_fake, _) = D(real), D(fake)
        return d_loss_margin(energy(real, recon_real), energy(fake, recon_fake), hp.margin[..., None])

    def g_loss(self, D, fake, hp, state):
        recon_fake, code_fake = D(fake)
        loss = g_loss_energy(energy(fake, recon_fake))
        if hp.any("wPT"):  # torch.where leaves the losses of members without the term untouched
            loss = torch.where(hp.wPT > 0, loss + hp.wPT * pulling_away(code_fake), loss)
        return loss


FAMILY = EBGAN()
