"""The paper's fully connected models for the MNIST grid (SPEC, Appendix C).

Rules, all from Appendix C unless marked (ours):
- nLayerG / nLayerD count weight (Linear) layers; ReLU is the nonlinearity.
- Batch norm after every weight layer, except G's output layer and D's input layer;
  also none on D's scalar output or on EBGAN's decoder output (ours, SPEC's defaults).
- G ends in tanh (images live in [-1, 1], 32 x 32 = 1024 pixels).
- EBGAN's D is an auto-encoder: nLayerD - 1 encoder layers of width sizeD, then ONE linear
  decoder layer back to 1024 pixels. The code is the encoder's output, i.e. what the decoder
  sees; the pulling-away term is computed on it.
- dropoutD: dropout (rate `dropoutRate`) after every hidden ReLU of D (ours: where).
- Init: Linear weights ~ N(0, 0.02) in G and N(0, 0.002) in D, biases 0; batch-norm
  layers keep PyTorch's default (scale 1, shift 0).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.config import TrainConfig

IMAGE_DIM = 32 * 32
G_INIT_STD = 0.02
D_INIT_STD = 0.002


def init_linear(module: nn.Module, std: float) -> None:
    """N(0, std) weights and zero biases for every Linear layer of `module`."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)


def hidden_layers(n: int, d_in: int, width: int, bn_first: bool, dropout: float) -> list[nn.Module]:
    """`n` blocks of Linear -> [BatchNorm] -> ReLU -> [Dropout]."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Linear(d_in if i == 0 else width, width))
        if i > 0 or bn_first:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class Generator(nn.Module):
    """z [N, nz] -> image [N, 1024] in [-1, 1]."""

    def __init__(self, nz: int, nLayerG: int, sizeG: int):
        super().__init__()
        self.net = nn.Sequential(
            *hidden_layers(nLayerG - 1, nz, sizeG, bn_first=True, dropout=0.0),
            nn.Linear(sizeG, IMAGE_DIM),
            nn.Tanh(),
        )
        init_linear(self, G_INIT_STD)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """GAN's D: image [N, 1024] -> one logit [N]."""

    def __init__(self, nLayerD: int, sizeD: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            *hidden_layers(nLayerD - 1, IMAGE_DIM, sizeD, bn_first=False, dropout=dropout),
            nn.Linear(sizeD, 1),
        )
        init_linear(self, D_INIT_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class AutoEncoderD(nn.Module):
    """EBGAN's D: image [N, 1024] -> (reconstruction [N, 1024], code [N, sizeD])."""

    def __init__(self, nLayerD: int, sizeD: int, dropout: float):
        super().__init__()
        self.encoder = nn.Sequential(
            *hidden_layers(nLayerD - 1, IMAGE_DIM, sizeD, bn_first=False, dropout=dropout))
        self.decoder = nn.Linear(sizeD, IMAGE_DIM)
        init_linear(self, D_INIT_STD)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(x)
        return self.decoder(code), code


def linear_weights(cfg: TrainConfig) -> tuple[int, int]:
    """(G's, D's) weights of their Linear layers (biases and batch norm left out), without building them."""
    g = cfg.nz * cfg.sizeG + (cfg.nLayerG - 2) * cfg.sizeG ** 2 + cfg.sizeG * IMAGE_DIM
    d_out = IMAGE_DIM if cfg.family == "ebgan" else 1
    d = IMAGE_DIM * cfg.sizeD + (cfg.nLayerD - 2) * cfg.sizeD ** 2 + cfg.sizeD * d_out
    return g, d


def build_models(cfg: TrainConfig) -> tuple[Generator, nn.Module]:
    """G and D for one config (call after seeding: the seed fixes the initialization)."""
    dropout = cfg.dropoutRate if cfg.dropoutD else 0.0
    G = Generator(cfg.nz, cfg.nLayerG, cfg.sizeG)
    D = (AutoEncoderD if cfg.family == "ebgan" else Discriminator)(cfg.nLayerD, cfg.sizeD, dropout)
    return G, D
