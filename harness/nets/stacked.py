"""The stacked layers and models: K same-shape models as ONE model, member k a slice of every tensor.

The idea (HFTA, Wang et al. 2021; "model ensembling" with torch.func): K models whose tensors
have identical shapes (`TrainConfig.shape_key()`) are K slices of stacked tensors. Then

- every Linear is one batched matmul over the members    y[k] = x[k] W[k]^T + b[k]   (baddbmm);
- every batch norm normalises each member over its OWN batch (x: [K, B, F], statistics over B),
  with its own affine parameters and running statistics; a layer norm (WGAN-GP's critic)
  normalises each sample, then applies member k's scale and shift;
- each member has its own dropout rate and masks (`DropoutRNG`);
- a penalty on D's input gradient (WGAN-GP) needs a double backward: its D is built from
  StackedLinear(grad_in_place=False), plain autograd ops, so autograd differentiates it twice.

The models follow harness.nets.plain's layer rules (Appendix C, or the config's normG / normD);
`build_stacked` builds them with zero weights, and harness.engine.pack loads each member's own
initialization (its own initStdG / initStdD) into its slice.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from harness.config import TrainConfig

Masks = Literal["reference", "pack"]
DROPOUT_SEED_OFFSET = 20_000   # masks="pack": the pack's mask generator is seeded min(seeds) + this


# --- the stacked layers ----------------------------------------------------------------------

def stacked_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """y[k] = x[k] W[k]^T + b[k] for x [K, B, in], W [K, out, in], b [K, out]."""
    if weight.shape[1] == 1:  # a 1-unit output as (W x^T)^T: F.linear's matrix-vector rounding
        return torch.baddbmm(bias.unsqueeze(-1), weight, x.transpose(1, 2)).transpose(1, 2)
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def autocast_dtype_now(device_type: str) -> torch.dtype | None:
    """The dtype autocast computes matmuls in here and now, or None outside autocast."""
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


class StackedLinearFn(torch.autograd.Function):
    """y[k] = x[k] W[k]^T + b[k], with F.linear's backward written out per member:
        dx[k] = dy[k] W[k],   dW[k] = dy[k]^T x[k],   db[k] = sum_B dy[k].
    dW goes straight into the layer's persistent gradient buffer `layer.weight.grad` (summed
    there when the layer is used twice, as D is on real and fake batches): a fresh [K, out, in]
    tensor every step costs page faults that on a CPU rival the matmul itself.

    Under autocast (bf16, any device) the matmuls run in autocast's dtype, as F.linear's would:
    x, W and b are cast on the way in; the weight and bias gradients are summed into their fp32
    buffers and dx goes back in x's own dtype. Outside autocast nothing is cast."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, layer: StackedLinear) -> torch.Tensor:
        ctx.layer, ctx.x_dtype = layer, x.dtype
        ctx.low = autocast_dtype_now(x.device.type)
        if ctx.low is not None:
            x, weight, bias = x.to(ctx.low), weight.to(ctx.low), bias.to(ctx.low)
        ctx.save_for_backward(x, weight)
        with torch.autocast(x.device.type, enabled=False):
            return stacked_linear(x, weight, bias)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, weight = ctx.saved_tensors
        if ctx.low is not None:
            dy = dy.to(ctx.low)
        dx = torch.bmm(dy, weight).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        if ctx.needs_input_grad[1]:
            ctx.layer.add_weight_grad(dy.transpose(1, 2), x)
        # dy arrives transposed from a StackedBatchNorm; summed so, it rounds unlike the
        # reference's contiguous [B, out] sum when out is not a multiple of 32 (e.g. sizeG 400)
        db = (dy.contiguous().sum(1) if ctx.low is None else dy.float().sum(1)) if ctx.needs_input_grad[2] else None
        return dx, None, db, None


class StackedLinear(nn.Module):
    """K independent Linear layers: x [K, B, in] -> y [K, B, out].

    grad_in_place=True: StackedLinearFn's backward (the weight gradient into a persistent
    buffer). False: plain autograd ops (baddbmm), whose backward is itself differentiable, for
    losses that differentiate D's input gradient (WGAN-GP's penalty: a double backward). Both
    repeat F.linear's arithmetic, and its autograd's, bit for bit on CPU."""

    def __init__(self, K: int, d_in: int, d_out: int, grad_in_place: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(K, d_out, d_in))   # W[k] as nn.Linear stores it
        self.bias = nn.Parameter(torch.zeros(K, d_out))
        self.grad_in_place = grad_in_place
        self.grad_is_stale = True                                  # set by PackOptimizer.zero_grad
        self.second_use: torch.Tensor | None = None

    def add_weight_grad(self, dy_t: torch.Tensor, x: torch.Tensor) -> None:
        """weight.grad (+)= dy^T x, in place (a second use goes through a buffer of its own)."""
        if self.weight.grad is None:
            self.weight.grad = torch.empty_like(self.weight)
            self.grad_is_stale = True
        if dy_t.dtype != self.weight.grad.dtype:                  # autocast: a low-precision dW, summed in fp32
            dw = torch.bmm(dy_t, x).to(self.weight.grad.dtype)
            if self.grad_is_stale:
                self.weight.grad.copy_(dw)
            else:
                self.weight.grad.add_(dw)
            self.grad_is_stale = False
        elif self.grad_is_stale:
            torch.bmm(dy_t, x, out=self.weight.grad)
            self.grad_is_stale = False
        else:
            if self.second_use is None:
                self.second_use = torch.empty_like(self.weight)
            self.weight.grad.add_(torch.bmm(dy_t, x, out=self.second_use))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_in_place:
            return StackedLinearFn.apply(x, self.weight, self.bias, self)
        return stacked_linear(x, self.weight, self.bias)   # plain autograd (torch.compile)


class StackedBatchNorm(nn.Module):
    """K independent BatchNorm1d: member k normalises over its own batch,
        y[k] = (x[k] - mean_B x[k]) / sqrt(var_B x[k] + eps) * gamma[k] + beta[k],
    with running statistics per member (momentum 0.1, unbiased variance, as nn.BatchNorm1d).
    PyTorch's own kernel does it, on x laid out as [B, K*F]: one channel per (member, unit).
    """

    def __init__(self, K: int, width: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(K, width))
        self.bias = nn.Parameter(torch.zeros(K, width))
        self.register_buffer("running_mean", torch.zeros(K, width))
        self.register_buffer("running_var", torch.ones(K, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, B, width = x.shape
        y = F.batch_norm(x.transpose(0, 1).reshape(B, K * width), self.running_mean.view(-1),
                         self.running_var.view(-1), self.weight.reshape(-1), self.bias.reshape(-1),
                         self.training, self.momentum, self.eps)
        return y.view(B, K, width).transpose(0, 1).contiguous()


class StackedLayerNorm(nn.Module):
    """K independent harness.nets.plain.LayerNorm: each sample normalised over its units, then
    member k's scale and shift (normalize-then-affine, as the reference computes it)."""

    def __init__(self, K: int, width: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(K, width))
        self.bias = nn.Parameter(torch.zeros(K, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)


class DropoutRNG:
    """Where a pack's dropout masks come from.

    "reference" (the default on CPU): one CPU generator per dropout member (`members[k]`), holding
    the global RNG state its reference run has after initialization, so member k draws exactly the
    masks its reference run draws. "pack" (on accelerators, where the reference draws masks in a
    fused kernel nobody can reproduce): one generator on the device draws one mask tensor for all
    members: dropout members follow the same distribution, not the same masks.
    """

    def __init__(self, masks: Masks, device: torch.device, seed: int):
        self.masks = masks
        self.members: list[torch.Generator | None] = []
        self.pack = torch.Generator(device).manual_seed(seed + DROPOUT_SEED_OFFSET) if masks == "pack" else None


class StackedDropout(nn.Module):
    """Per-member dropout: member k zeroes each unit with probability p[k] (0: no dropout) and
    scales the kept ones by 1 / (1 - p[k]), as F.dropout does."""

    def __init__(self, rates: list[float], rng: DropoutRNG):
        super().__init__()
        self.rates, self.rng = rates, rng
        p = torch.tensor(rates).view(-1, 1, 1)
        self.register_buffer("p", p)
        self.register_buffer("scale", 1 / (1 - p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        K, B, width = x.shape
        if self.rng.masks == "pack":
            keep = torch.rand(K, B, width, generator=self.rng.pack, device=x.device) >= self.p
            return x * (keep * self.scale)
        # F.dropout on CPU: mask = empty_like(x).bernoulli_(1 - p) / (1 - p);  x * mask
        masks = [torch.empty(B, width).bernoulli_(1 - p, generator=g).div_(1 - p) if p > 0
                 else torch.ones(B, width) for p, g in zip(self.rates, self.rng.members)]
        return x * torch.stack(masks).to(x.device)


# --- the packed G and D (the layer rules of harness.nets.plain) ------------------------------------

def stacked_hidden_layers(K: int, n: int, d_in: int, width: int, bn_first: bool,
                          rates: list[float], rng: DropoutRNG | None, norm: str = "batch",
                          grad_in_place: bool = True) -> list[nn.Module]:
    """`n` blocks of StackedLinear -> [StackedBatchNorm | StackedLayerNorm | none] -> ReLU -> [StackedDropout]."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(StackedLinear(K, d_in if i == 0 else width, width, grad_in_place))
        if i > 0 or bn_first:
            if norm == "batch":
                layers.append(StackedBatchNorm(K, width))
            elif norm == "layer":
                layers.append(StackedLayerNorm(K, width))
        layers.append(nn.ReLU())
        if any(p > 0 for p in rates):
            layers.append(StackedDropout(rates, rng))
    return layers


class PackedGenerator(nn.Module):
    """K Generators: z [K, N, nz] -> samples [K, N, dim]."""

    def __init__(self, K: int, nz: int, nLayerG: int, sizeG: int, dim: int, norm: str = "batch"):
        super().__init__()
        self.net = nn.Sequential(*stacked_hidden_layers(K, nLayerG - 1, nz, sizeG, True, [0.0] * K, None, norm),
                                 StackedLinear(K, sizeG, dim), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class PackedDiscriminator(nn.Module):
    """K Discriminators of harness.nets.plain: a score head (x [K, N, dim] -> scores [K, N]) or an
    auto-encoder (x -> (reconstruction [K, N, dim], code [K, N, sizeD]), the code before dropout)."""

    def __init__(self, K: int, head: str, nLayerD: int, sizeD: int, rates: list[float], rng: DropoutRNG,
                 dim: int, norm: str = "batch", grad_in_place: bool = True):
        super().__init__()
        layers = stacked_hidden_layers(K, nLayerD - 1, dim, sizeD, False, rates, rng, norm, grad_in_place)
        self.autoencoder = head == "autoencoder"
        has_dropout = isinstance(layers[-1], StackedDropout)
        self.code_dropout = layers.pop() if self.autoencoder and has_dropout else nn.Identity()
        self.body = nn.Sequential(*layers)
        self.head = StackedLinear(K, sizeD, dim if self.autoencoder else 1, grad_in_place)

    def forward(self, x: torch.Tensor):
        h = self.body(x)
        if self.autoencoder:
            return self.head(self.code_dropout(h)), h
        return self.head(h).squeeze(-1)


def build_stacked_models(configs: list[TrainConfig], rng: DropoutRNG, head: str, dim: int,
                         grad_in_place: bool = True) -> tuple[PackedGenerator, PackedDiscriminator]:
    """Stacked G and D of the shape of `configs` (zero weights: harness.engine.pack loads the
    members), normalized as they are (normG and `norm_d`, in `shape_key()`: one for all members)."""
    c, K = configs[0], len(configs)
    G = PackedGenerator(K, c.nz, c.nLayerG, c.sizeG, dim, c.normG)
    D = PackedDiscriminator(K, head, c.nLayerD, c.sizeD,
                            [cfg.dropoutRate if cfg.dropoutD else 0.0 for cfg in configs], rng, dim, c.norm_d,
                            grad_in_place)
    return G, D
