"""G and D, plain (one config: harness.nets.plain, the paper's Appendix C models) or stacked (K
same-shape configs as one model: harness.nets.stacked), shaped as the config's family declares.

    G, D = build(cfg)                  # after torch.manual_seed(cfg.seed): the reference models
    G, D = build_stacked(cfgs, rng)    # zero weights; harness.engine.pack loads each member
"""
from __future__ import annotations

from torch import nn

from harness import datasets
from harness.config import TrainConfig
from harness.nets.plain import build, linear_weights
from harness.nets.stacked import DropoutRNG, build_stacked_models

__all__ = ["build", "build_stacked", "linear_weights"]


def build_stacked(configs: list[TrainConfig], rng: DropoutRNG) -> tuple[nn.Module, nn.Module]:
    """The stacked G and D of K configs of one shape, D's head as their family declares, the norms
    as the configs give them (normG, `TrainConfig.norm_d`; a penalty on D's input gradient needs
    plain-autograd linears: `needs_double_backward`)."""
    family = configs[0].spec
    return build_stacked_models(configs, rng, head=family.d_head, dim=datasets.of(configs[0]).dim,
                                grad_in_place=not family.needs_double_backward)
