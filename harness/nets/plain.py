"""The paper's fully connected models for the MNIST grid (SPEC, Appendix C), for every family.

Rules, all from Appendix C unless marked (ours). Some are settings of a config now (harness.settings,
in brackets), for other papers' nets (the 2D mixtures' GANs); their defaults are Appendix C's, so
a config that leaves them alone trains exactly these models:
- nLayerG / nLayerD count weight (Linear) layers; ReLU is the nonlinearity.
- Batch norm after every weight layer, except G's output layer and D's input layer
  [normG, normD: "batch" | "layer" | "none", default "batch"; they change which norm, never where].
- (ours, a deliberate reading of Appendix C) no batch norm on D's output layer either: not on
  a score head's single number (GAN's logit: normalising one unit over the batch would fix
  the mean and spread of D's output across the batch, which is D's whole answer) and not on an
  auto-encoder's decoder (EBGAN's reconstruction: the energy compares it with the image
  pixel by pixel). Appendix C names the exceptions for G's output and D's input only; we read
  "D's output" as the same kind of layer as G's output, which the paper leaves without BN.
- G ends in tanh (images live in [-1, 1], 32 x 32 = 1024 pixels).
- D's head is a family's choice (`head`):
    "score":       one number per image (GAN's logit, LSGAN's score, WGAN-GP's critic value);
    "autoencoder": EBGAN's D: nLayerD - 1 encoder layers of width sizeD, then ONE linear
                   decoder layer back to 1024 pixels; returns (reconstruction, code).
- D's hidden normalization (`norm`) is the config's normD, unless its family requires its own
  (`Family.d_norm`; `TrainConfig.norm_d` gives the one trained): "none" for BEGAN (its paper's
  auto-encoder has none), "layer" for critics that must not mix the samples of a batch (WGAN-GP,
  whose penalty is per sample): `LayerNorm`, the normalization its paper suggests instead of
  batch norm, at the same places. G's (`norm`) is the config's normG.
- dropoutD: dropout (rate `dropoutRate`) after every hidden ReLU of D (ours: where).
- The code of an auto-encoder (what the pulling-away term of EBGAN-PT sees) is the encoder's
  output BEFORE dropout: f_PT measures how alike the representations of the fakes are, and a
  random mask would add its own (dis)similarity. The decoder sees the code after dropout, like
  every layer after a hidden ReLU of D.
- Init: Linear weights ~ N(0, 0.02) in G and N(0, 0.002) in D, biases 0 [initStdG, initStdD:
  the stds, default 0.02 and 0.002]; batch and layer norm layers keep PyTorch's default
  (scale 1, shift 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness import datasets
from harness.config import TrainConfig
from harness.settings import CommonSettings

G_INIT_STD = CommonSettings.initStdG   # Appendix C's: 0.02
D_INIT_STD = CommonSettings.initStdD   # 0.002


def init_linear(module: nn.Module, std: float) -> None:
    """N(0, std) weights and zero biases for every Linear layer of `module`."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)


class LayerNorm(nn.Module):
    """Layer norm over the last dim with a per-unit scale and shift (nn.LayerNorm's maths),
    computed as normalize-then-affine so that a pack of K (harness.nets.stacked.StackedLayerNorm)
    repeats it bit for bit, gradient penalties (double backward) included."""

    def __init__(self, width: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight + self.bias


def norm_layer(norm: str, width: int) -> nn.Module | None:
    """A hidden normalization by its name (harness.settings.NORMS); None for "none"."""
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return LayerNorm(width)
    return None


def hidden_layers(n: int, d_in: int, width: int, bn_first: bool, dropout: float,
                  norm: str = "batch") -> list[nn.Module]:
    """`n` blocks of Linear -> [norm] -> ReLU -> [Dropout]."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Linear(d_in if i == 0 else width, width))
        if i > 0 or bn_first:
            normalize = norm_layer(norm, width)
            if normalize is not None:
                layers.append(normalize)
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class Generator(nn.Module):
    """z [N, nz] -> a sample [N, dim] in [-1, 1] (MNIST: an image, dim 1024)."""

    def __init__(self, nz: int, nLayerG: int, sizeG: int, dim: int, norm: str = "batch",
                 init_std: float = G_INIT_STD):
        super().__init__()
        self.net = nn.Sequential(
            *hidden_layers(nLayerG - 1, nz, sizeG, bn_first=True, dropout=0.0, norm=norm),
            nn.Linear(sizeG, dim),
            nn.Tanh(),
        )
        init_linear(self, init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """A score head's D (GAN, LSGAN, WGAN-GP): samples [N, dim] -> one number per sample [N]."""

    def __init__(self, nLayerD: int, sizeD: int, dropout: float, dim: int, norm: str = "batch",
                 init_std: float = D_INIT_STD):
        super().__init__()
        self.net = nn.Sequential(
            *hidden_layers(nLayerD - 1, dim, sizeD, bn_first=False, dropout=dropout, norm=norm),
            nn.Linear(sizeD, 1),
        )
        init_linear(self, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class AutoEncoderD(nn.Module):
    """An auto-encoder D (EBGAN, BEGAN): samples [N, dim] -> (reconstruction [N, dim], code [N, sizeD]).

    The code is the encoder's output before its dropout; the decoder sees it after."""

    def __init__(self, nLayerD: int, sizeD: int, dropout: float, dim: int, norm: str = "batch",
                 init_std: float = D_INIT_STD):
        super().__init__()
        layers = hidden_layers(nLayerD - 1, dim, sizeD, bn_first=False, dropout=dropout, norm=norm)
        self.code_dropout = layers.pop() if dropout > 0 else nn.Identity()
        self.encoder = nn.Sequential(*layers)
        self.decoder = nn.Linear(sizeD, dim)
        init_linear(self, init_std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(x)
        return self.decoder(self.code_dropout(code)), code


def linear_weights(cfg: TrainConfig) -> tuple[int, int]:
    """(G's, D's) weights of their Linear layers (biases and norms left out), without building them."""
    dim = datasets.of(cfg).dim
    g = cfg.nz * cfg.sizeG + (cfg.nLayerG - 2) * cfg.sizeG ** 2 + cfg.sizeG * dim
    d_out = dim if cfg.spec.d_head == "autoencoder" else 1
    d = dim * cfg.sizeD + (cfg.nLayerD - 2) * cfg.sizeD ** 2 + cfg.sizeD * d_out
    return g, d


def build(cfg: TrainConfig) -> tuple[Generator, nn.Module]:
    """G and D for one config: G normalized by normG, D headed as its family declares (`d_head`)
    and normalized by `cfg.norm_d`, their weights drawn with initStdG and initStdD, both sized to
    its dataset's samples; call after seeding: the seed fixes the initialization."""
    head, dim = cfg.spec.d_head, datasets.of(cfg).dim
    dropout = cfg.dropoutRate if cfg.dropoutD else 0.0
    G = Generator(cfg.nz, cfg.nLayerG, cfg.sizeG, dim, cfg.normG, cfg.initStdG)
    D = (AutoEncoderD if head == "autoencoder" else Discriminator)(cfg.nLayerD, cfg.sizeD, dropout, dim,
                                                                   cfg.norm_d, cfg.initStdD)
    return G, D
