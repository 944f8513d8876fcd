"""GAN (Goodfellow et al. 2014), the EBGAN paper's baseline: D gives one logit per image.

Losses (SPEC, "Models"): D's is the binary cross-entropy with real -> 1 and fake -> 0, G's the
usual non-saturating form. Model: the paper's fully connected D with batch norm (harness.nets.plain).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.families.base import Family


def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    # BCE with real -> 1, fake -> 0:  -log s(D(x)) - log(1 - s(D(G(z))))
    return F.softplus(-real_logits).mean(-1) + F.softplus(fake_logits).mean(-1)


def g_loss_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    # non-saturating generator loss:  -log s(D(G(z)))
    return F.softplus(-fake_logits).mean(-1)


class GAN(Family):
    name, title, rank = "gan", "GAN", 0
    colors = {"GAN": "#0072B2"}
    # Before families were plugins, every config carried EBGAN's margin and wPT at these values,
    # GAN's too, and results are keyed by the ids hashed from them (harness.config.config_id).
    legacy_settings = {"margin": 10.0, "wPT": 0.0}

    def d_loss(self, D, real, fake, hp, state, draw):
        return d_loss_bce(D(real), D(fake))

    def g_loss(self, D, fake, hp, state):
        return g_loss_non_saturating(D(fake))


FAMILY = GAN()
