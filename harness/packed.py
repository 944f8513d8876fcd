"""Packed training: K same-shape configs of a grid trained together as ONE model.

    results = train_pack(configs, data, scorer, samples_dir)   # one TrainResult per config

The training loop is harness.train.run, shared with the reference trainer; this module gives
it the `Pack` backend (stacked models, per-member optimizers). The models come from the
family's `build_packed` (default: `build_stacked`, the stacked twins of harness.models).

The idea (HFTA, Wang et al. 2021; "model ensembling" with torch.func): K models whose tensors
have identical shapes (`TrainConfig.shape_key()`) are K slices of stacked tensors. Then

- every Linear is one batched matmul over the members    y[k] = x[k] W[k]^T + b[k]   (baddbmm);
- every batch norm normalises each member over its OWN batch (x: [K, B, F], statistics over B),
  with its own affine parameters and running statistics; a layer norm (WGAN-GP's critic)
  normalises each sample, then applies member k's scale and shift;
- the members' losses are summed, and since  d(sum_j L_j)/d theta_k = dL_k/d theta_k,  each
  member gets exactly the gradient it would get alone;
- each member keeps its own optimizer (Adam or SGD), learning rate, betas/momentum, family
  settings (margin, w_PT, lambdaGP, gamma, ...: `hp` tensors of shape [K]), family state
  (BEGAN's k_t), dropout, seed and divergence status. Settings that shape the loop (WGAN-GP's
  nCritic) are in `shape_key()`: members share them.
- a penalty on D's input gradient (WGAN-GP) needs a double backward: its D is built from
  StackedLinear(grad_in_place=False), plain autograd ops, so autograd differentiates it twice.

How a member stays equal to its run by the reference trainer (`harness.train.train`):

- initialization: the member's reference G and D are built under `torch.manual_seed(seed)`,
  exactly as train.py builds them, and their tensors are copied into the stacks;
- data order and z: each seed has one stream `torch.Generator(device).manual_seed(seed)` that
  draws the epoch's `randperm` and each step's z as train.py draws them. Members of one seed
  share them (common random numbers). A pack may mix seeds: each seed's stream is drawn and
  gathered per member, so packs need not be split by seed;
- the optimizers repeat torch.optim.Adam / SGD op for op (`PackOptimizer`);
- scoring z (seed + SCORE_SEED_OFFSET) and the sample grid's z (SAMPLE_GRID_SEED) are drawn
  per seed exactly as train.py draws them;
- dropout masks: with masks="reference" (the default on CPU) member k draws its masks from its
  own generator, which continues the global RNG stream its reference run uses after
  initialization, so the masks are train.py's. On CUDA the reference draws masks in a fused
  kernel we cannot reproduce; there the pack draws one mask tensor for all members from a pack
  generator (masks="pack"): dropout members follow the same distribution, not the same masks.
On CPU a member then follows its reference run bit for bit: per-step losses, steps, I', FID,
class histogram (tests/test_packed.py and tests/test_families.py, with MKL; GAN, EBGAN,
EBGAN-PT, LSGAN, WGAN-GP, BEGAN, Adam and SGD, mixed seeds, dropout with masks="reference").
Anything less would not do: see PackOptimizer.

Divergence, per member: a non-finite loss (checked every step on the device, no host sync)
or a non-finite weight (checked at every epoch end) marks the member `diverged` with the
steps it did. At the next epoch end its weights and optimizer state are set to zero and
from then on its gradients are zeroed: it is frozen. No op reduces over the member dim, so
a NaN in one member cannot reach another, even before it is frozen.

Speed on a CPU (`python -m harness.bench`): a batched matmul runs at the FLOP rate of K plain
ones and the matmuls are ~70% of a reference step, so packing can only save the rest; it does
(no per-step gradient or Adam buffers to allocate and fault in, a few foreach ops per step):
~1.0x the reference's model-steps/s at the smallest Table 1 widths, 1.2x in the middle and
1.2-1.45x at the largest. Packing pays most where per-op overhead dominates: tiny models, GPUs.

On a GPU: everything lives on the training device (stacks, data, generators), the optimizer
is a few foreach kernels per step for the whole pack, and the host syncs once per epoch; the
masks default to "pack", bf16 autocast is optional and off. This path has not run on a GPU yet
(none was available when it was written); its device choices are tested on CPU.

Timing fields of each member's TrainResult: `stepsPerSec` is the pack's steps per second
(each member did that many steps per second; the pack's model-steps/s is K times it), and
`wallTime` is the pack's wall time (training and scoring), what each member waited.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.adam import adam as functional_adam
from torch.optim.sgd import sgd as functional_sgd

from harness.config import TrainConfig
from harness.metrics import Scorer
from harness.models import D_INIT_STD, G_INIT_STD, IMAGE_DIM, LayerNorm, linear_weights
from harness.train import (EpochHook, StepClock, StopHook, Streams, TrainResult, eager_steps, pick_device, run,
                           sample_chunks, score_pack)

Masks = Literal["reference", "pack"]
Init = Literal["reference", "random"]
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
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, layer: "StackedLinear") -> torch.Tensor:
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
    """K independent harness.models.LayerNorm: each sample normalised over its units, then
    member k's scale and shift (normalize-then-affine, as the reference computes it)."""

    def __init__(self, K: int, width: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(K, width))
        self.bias = nn.Parameter(torch.zeros(K, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)


class DropoutRNG:
    """Where a pack's dropout masks come from (see the module docstring).

    "reference": one CPU generator per dropout member (`members[k]`), holding the global RNG
    state its reference run has after initialization. "pack": one generator on the device.
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


# --- the packed G and D (the layer rules of harness.models) ------------------------------------

def stacked_hidden_layers(K: int, n: int, d_in: int, width: int, bn_first: bool,
                          rates: list[float], rng: DropoutRNG | None, norm: str = "batch",
                          grad_in_place: bool = True) -> list[nn.Module]:
    """`n` blocks of StackedLinear -> [StackedBatchNorm | StackedLayerNorm] -> ReLU -> [StackedDropout]."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(StackedLinear(K, d_in if i == 0 else width, width, grad_in_place))
        if i > 0 or bn_first:
            layers.append(StackedBatchNorm(K, width) if norm == "batch" else StackedLayerNorm(K, width))
        layers.append(nn.ReLU())
        if any(p > 0 for p in rates):
            layers.append(StackedDropout(rates, rng))
    return layers


class PackedGenerator(nn.Module):
    """K Generators: z [K, N, nz] -> images [K, N, 1024]."""

    def __init__(self, K: int, nz: int, nLayerG: int, sizeG: int):
        super().__init__()
        self.net = nn.Sequential(*stacked_hidden_layers(K, nLayerG - 1, nz, sizeG, True, [0.0] * K, None),
                                 StackedLinear(K, sizeG, IMAGE_DIM), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class PackedDiscriminator(nn.Module):
    """K Discriminators of harness.models: a score head (x [K, N, 1024] -> scores [K, N]) or an
    auto-encoder (x -> (reconstruction [K, N, 1024], code [K, N, sizeD]), the code before dropout)."""

    def __init__(self, K: int, head: str, nLayerD: int, sizeD: int, rates: list[float], rng: DropoutRNG,
                 norm: str = "batch", grad_in_place: bool = True):
        super().__init__()
        layers = stacked_hidden_layers(K, nLayerD - 1, IMAGE_DIM, sizeD, False, rates, rng, norm, grad_in_place)
        self.autoencoder = head == "autoencoder"
        has_dropout = isinstance(layers[-1], StackedDropout)
        self.code_dropout = layers.pop() if self.autoencoder and has_dropout else nn.Identity()
        self.body = nn.Sequential(*layers)
        self.head = StackedLinear(K, sizeD, IMAGE_DIM if self.autoencoder else 1, grad_in_place)

    def forward(self, x: torch.Tensor):
        h = self.body(x)
        if self.autoencoder:
            return self.head(self.code_dropout(h)), h
        return self.head(h).squeeze(-1)


def build_stacked(configs: list[TrainConfig], rng: DropoutRNG, head: str, norm: str,
                  grad_in_place: bool = True) -> tuple[PackedGenerator, PackedDiscriminator]:
    """Stacked G and D of the shape of `configs` (zero weights: `build_pack` loads the members)."""
    c, K = configs[0], len(configs)
    G = PackedGenerator(K, c.nz, c.nLayerG, c.sizeG)
    D = PackedDiscriminator(K, head, c.nLayerD, c.sizeD,
                            [cfg.dropoutRate if cfg.dropoutD else 0.0 for cfg in configs], rng, norm, grad_in_place)
    return G, D


_STACKED = {StackedLinear: nn.Linear, StackedBatchNorm: nn.BatchNorm1d, StackedLayerNorm: LayerNorm}


@torch.no_grad()
def load_member(packed: nn.Module, k: int, member: nn.Module) -> None:
    """Copy a reference module's Linear and norm tensors (in module order) into slice k."""
    stacked = [m for m in packed.modules() if type(m) in _STACKED]
    own = [m for m in member.modules() if type(m) in _STACKED.values()]
    assert [_STACKED[type(s)] for s in stacked] == [type(o) for o in own], "the member does not fit the pack's shape"
    for s, o in zip(stacked, own):
        for name in ("weight", "bias") + (("running_mean", "running_var") if isinstance(o, nn.BatchNorm1d) else ()):
            getattr(s, name)[k].copy_(getattr(o, name))


def build_pack(configs: list[TrainConfig], device: torch.device, masks: Masks, init: Init = "reference"
               ) -> tuple[nn.Module, nn.Module]:
    """The packed G and D of `configs` (their family's `build_packed`).

    init="reference": member k initialized exactly as the reference trainer initializes it (the
    family's `build`, on the CPU, member by member). init="random": the stacks drawn at once on
    the device from the same distributions (harness.models' N(0, std) weights, zero biases), not
    any member's reference initialization: for throughput, where building 96 members one by one
    would cost more than the steps timed."""
    family = configs[0].spec
    rng = DropoutRNG(masks, device, min(cfg.seed for cfg in configs))
    if init == "random":
        with torch.device(device):
            G, D = family.build_packed(configs, rng)
        for net, std in ((G, G_INIT_STD), (D, D_INIT_STD)):
            for m in net.modules():
                if isinstance(m, StackedLinear):
                    nn.init.normal_(m.weight, 0.0, std)
        rng.members = [torch.Generator().manual_seed(cfg.seed) if cfg.dropoutD else None for cfg in configs]
        return G, D
    G, D = family.build_packed(configs, rng)
    for k, cfg in enumerate(configs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)               # as train.Reference: the initialization ...
            G_k, D_k = family.build(cfg)
            # ... and then the global stream its dropout masks come from
            rng.members.append(torch.Generator().set_state(torch.get_rng_state()) if cfg.dropoutD else None)
        load_member(G, k, G_k)
        load_member(D, k, D_k)
    return G.to(device), D.to(device)


# --- the optimizers ----------------------------------------------------------------------------

def optimizer_settings(kind: str, cfg: TrainConfig) -> tuple:
    return (kind, cfg.lr) + ((cfg.adamBeta1, cfg.adamBeta2) if kind == "adam" else (cfg.sgdMomentum,))


def member_order(configs: list[TrainConfig]) -> list[int]:
    """Pack order: members with equal D settings, then equal G settings, are neighbours."""
    return sorted(range(len(configs)), key=lambda k: (optimizer_settings(configs[k].optimD, configs[k]),
                                                      optimizer_settings(configs[k].optimG, configs[k])))


class PackOptimizer:
    """The optimizers of one packed network: Adam or SGD per member, with its own settings.

    Members with equal settings are neighbours (`member_order`); a block of them owns rows
    [start:end] of every stacked parameter. A step hands each block's rows (views) to
    torch.optim's own functional Adam / SGD (`torch.optim.adam.adam`, `torch.optim.sgd.sgd`,
    foreach; eps = 1e-8, no weight decay), so the arithmetic is torch's, not ours, and each
    member's update is bit for bit what torch.optim.Adam / SGD give it alone (checked against
    them in tests/test_packed.py). Bit-equality matters: in EBGAN's first steps Adam's update is
    about lr * sign(g) for gradients that are nearly 0, and a 1-ulp difference grows ~1e4-fold
    within 6 steps (we measured it with torch's fused Adam), so only identical arithmetic keeps
    a member on its reference trajectory. The step counts are CPU tensors, as torch.optim.Adam
    keeps them when not capturable: no device sync. (A hand-written foreach version of the same
    ops, with a preallocated Adam denominator, measured the same speed on CPU.)
    Frozen members get zero gradients: their updates are exactly zero.

    capturable=True (a CUDA graph of the step): torch's capturable Adam, its step counts on the
    device (its bias corrections are then computed there, in float32, not as Python floats: a
    last-bit difference from torch.optim's default), and the frozen members' gradients zeroed by
    a mask that `freeze` updates in place, so that a graph captured before a freeze honours it.
    """

    def __init__(self, net: nn.Module, kinds: list[str], configs: list[TrainConfig], capturable: bool = False):
        self.params = params = list(net.parameters())
        self.capturable = capturable
        device = params[0].device
        self.keep = torch.ones(len(configs), dtype=torch.bool, device=device)  # capturable: not frozen
        self.linears = [m for m in net.modules() if isinstance(m, StackedLinear) and m.grad_in_place]
        kept = {id(m.weight) for m in self.linears}              # gradients kept in place (StackedLinearFn)
        self.fresh = [p for p in params if id(p) not in kept]    # gradients autograd allocates
        self.frozen: torch.Tensor | None = None
        self.adam: list[tuple] = []   # (start, end, cfg, m, v, steps), one tensor per parameter
        self.sgd: list[tuple] = []    # (start, end, cfg, momentum buffers: None until the first step)
        start = 0
        for _, block in groupby(range(len(kinds)), key=lambda k: optimizer_settings(kinds[k], configs[k])):
            end = start + len(list(block))
            cfg = configs[start]

            def zeros() -> list[torch.Tensor]:
                return [torch.zeros_like(p[start:end]) for p in params]
            if kinds[start] == "adam":
                steps = [torch.tensor(0.0, device=device if capturable else "cpu") for _ in params]
                self.adam.append((start, end, cfg, zeros(), zeros(), steps))
            else:
                self.sgd.append((start, end, cfg, [None] * len(params)))
            start = end

    def zero_grad(self) -> None:
        for m in self.linears:
            m.grad_is_stale = True
        for p in self.fresh:
            p.grad = None

    def rows(self, start: int, end: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Members start..end-1 of every parameter and of its gradient (views)."""
        return [p.detach()[start:end] for p in self.params], [p.grad[start:end] for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        for m in self.linears:
            if m.grad_is_stale:                                   # no gradient this step
                m.add_weight_grad(torch.zeros_like(m.weight[:, :, :1]), torch.zeros_like(m.weight[:, :1, :]))
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            elif self.capturable:
                p.grad.masked_fill_(~self.keep.view(-1, *[1] * (p.dim() - 1)), 0.0)
            elif self.frozen is not None:
                p.grad.index_fill_(0, self.frozen, 0.0)
        for start, end, cfg, m, v, steps in self.adam:
            w, g = self.rows(start, end)
            functional_adam(w, g, m, v, [], steps, foreach=True, capturable=self.capturable, differentiable=False,
                            fused=None, grad_scale=None, found_inf=None, has_complex=False, amsgrad=False,
                            beta1=cfg.adamBeta1, beta2=cfg.adamBeta2, lr=cfg.lr, weight_decay=0.0,
                            eps=1e-8, maximize=False)
        for start, end, cfg, buffers in self.sgd:
            w, g = self.rows(start, end)
            functional_sgd(w, g, buffers, foreach=True, grad_scale=None, found_inf=None, weight_decay=0.0,
                           momentum=cfg.sgdMomentum, lr=cfg.lr, dampening=0.0, nesterov=False,
                           maximize=False, has_sparse_grad=False)

    @torch.no_grad()
    def freeze(self, members: list[int]) -> None:
        """Zero the members' weights and optimizer state; from now on their gradients are zeroed."""
        for p in self.params:
            p[members] = 0.0
        for start, end, _, *state in self.adam + self.sgd:
            rows = [k - start for k in members if start <= k < end]
            for buffer in (x for buffers in state for x in buffers):
                if buffer is not None and buffer.dim() > 0:       # (not Adam's step counts)
                    buffer[rows] = 0.0
        frozen = sorted(set(members) | set(self.frozen.tolist() if self.frozen is not None else []))
        self.frozen = torch.tensor(frozen, device=self.params[0].device)
        self.keep[self.frozen] = False

    def finite(self) -> torch.Tensor:
        """[K] bool: every weight of member k is finite."""
        return torch.stack([torch.isfinite(p).flatten(1).all(1) for p in self.params]).all(0)


# --- device choices (plain functions, so that CPU tests cover the logic) -------------------------

class SpeedUnsupported(ValueError):
    """A speed switch that cannot apply to this pack (the reason is the message)."""


@dataclass(frozen=True)
class Speed:
    """The packed engine's speed switches, each measured by `python -m harness.gpucheck`:
    TF32 and CUDA graphs are CUDA's; bf16 autocast and torch.compile run on any device."""
    tf32: bool = False     # TF32 matmuls: inputs rounded to 10 mantissa bits
    bf16: bool = False     # bf16 autocast of the forward passes (no trajectory can follow fp32's)
    graph: bool = False    # the whole D (+ G) step captured once as a CUDA graph, then replayed
    compile: bool = False  # torch.compile of G and D (their linears as plain autograd ops)

    def check(self, device: torch.device, family=None) -> None:
        """SpeedUnsupported if a switch cannot apply on this device (or to this family)."""
        cuda_only = [name for name in ("tf32", "graph") if getattr(self, name)]
        if cuda_only and device.type != "cuda":
            raise SpeedUnsupported(f"{', '.join(cuda_only)} need a CUDA device, not {device}")
        if self.compile and family is not None and family.needs_double_backward:
            raise SpeedUnsupported(f"torch.compile cannot differentiate twice (aot_autograd has no double "
                                   f"backward), and {family.title}'s loss needs it")


@contextlib.contextmanager
def matmul_precision(tf32: bool) -> Iterator[None]:
    """TF32 matmuls inside (when asked), the previous setting after."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32 or before
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def dropout_masks_for(device: torch.device) -> Masks:
    """Reference-equal masks on CPU; one fast pack draw on accelerators (see the module docstring)."""
    return "reference" if device.type == "cpu" else "pack"


def autocast_dtype(device: torch.device, bf16: bool, bf16_supported: bool | None = None) -> torch.dtype | None:
    """bf16 autocast where asked for, on a CPU or a CUDA device that supports it; else None (fp32)."""
    if not bf16:
        return None
    if device.type != "cuda":
        return torch.bfloat16
    supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return torch.bfloat16 if supported else None


def compiled(module: nn.Module) -> nn.Module:
    """torch.compile of a stacked G or D, with the dropout masks drawn outside what is compiled.

    A mask drawn from a generator of its own (StackedDropout) breaks dynamo's graph, so a
    Sequential with dropout layers is compiled as the runs between them, the dropouts eager.
    Shapes are static (a pack keeps its shapes for its whole run, and inductor specialises its
    kernels to them): each pack size and architecture compiles anew, which is why the Pack resets
    dynamo's caches when it is built instead of marking the pack dimension dynamic."""
    if not any(isinstance(m, StackedDropout) for m in module.modules()):
        return torch.compile(module)
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential) and any(isinstance(m, StackedDropout) for m in child):
            runs, run = [], []
            for layer in child:
                if isinstance(layer, StackedDropout):
                    runs += ([torch.compile(nn.Sequential(*run))] if run else []) + [layer]
                    run = []
                else:
                    run.append(layer)
            setattr(module, name, nn.Sequential(*runs, *([torch.compile(nn.Sequential(*run))] if run else [])))
        elif not isinstance(child, StackedDropout):
            setattr(module, name, compiled(child))
    return module


def compile_counts() -> dict[str, int]:
    """Dynamo's counts since its last reset: graphs compiled and graph breaks."""
    from torch._dynamo.utils import counters
    return {"graphs": int(counters["stats"]["unique_graphs"]), "graph_breaks": int(sum(counters["graph_break"].values()))}


# --- the packed backend of the training loop (harness.train.run) --------------------------------

class Pack:
    """K members as one stacked model, each with its own optimizer (harness.train.Backend)."""
    packed = True

    def __init__(self, cfgs: list[TrainConfig], device: torch.device, masks: Masks, speed: Speed,
                 init: Init = "reference"):
        G, D = build_pack(cfgs, device, masks, init)
        if speed.compile:  # dynamo traces plain autograd ops, not StackedLinearFn's in-place gradient
            for m in (*G.modules(), *D.modules()):
                if isinstance(m, StackedLinear):
                    m.grad_in_place = False
            # this pack's graphs only: past packs' cached graphs would count against dynamo's
            # recompile limit, past which it runs eagerly; make that an error, never silent
            torch._dynamo.reset()
            torch._dynamo.config.fail_on_recompile_limit_hit = True
        # a CUDA graph replays the step for every remaining step: only for families whose
        # D steps per G step are 1 (the step is then always the same D + G step)
        self.graphed = speed.graph and cfgs[0].spec.d_steps(cfgs[0].settings) == 1
        self.opt_d = PackOptimizer(D, [m.optimD for m in cfgs], cfgs, capturable=self.graphed)
        self.opt_g = PackOptimizer(G, [m.optimG for m in cfgs], cfgs, capturable=self.graphed)
        self.g_params = self.opt_g.params
        self.G, self.D = (compiled(G), compiled(D)) if speed.compile else (G, D)
        self.device, self.amp = device, autocast_dtype(device, speed.bf16)
        dropout = [m for m in D.modules() if isinstance(m, StackedDropout)]
        self.generators = [dropout[0].rng.pack] if dropout and dropout[0].rng.pack is not None else []

    def precision(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        # no cache of cast weights across a graph capture (torch's advice for autocast in graphs)
        return torch.autocast(self.device.type, dtype=self.amp, cache_enabled=not self.graphed)

    def stepper(self, body, streams: Streams, data: torch.Tensor, B: int, nz: int):
        if self.graphed:
            return GraphedSteps(body, streams, data, B, nz, self.generators)
        return eager_steps(body, streams, data, B, nz)

    def finite(self) -> torch.Tensor:
        return self.opt_g.finite() & self.opt_d.finite()

    def freeze(self, members: list[int]) -> None:
        self.opt_d.freeze(members)
        self.opt_g.freeze(members)


class GraphedSteps:
    """The loop's step (`body` of harness.train.run: the D step, then the G step) as one CUDA graph.

    The batch and z are drawn as the eager loop draws them (outside the graph, from the seeds'
    streams) and copied into the graph's static inputs; then the graph replays the forward passes,
    losses, backward passes and both optimizers' updates in one launch. The first WARMUP steps run
    eagerly on a side stream (cuBLAS workspaces, gradient buffers, optimizer state), as torch
    advises before a capture; the step after them is captured, then replayed. What the graph reads
    and writes is static: parameters, their gradient buffers, optimizer state, a family's state
    (updated in place), the frozen-member mask. Random numbers drawn inside the step (the pack's
    dropout masks) come from generators registered with the graph, so every replay draws anew."""
    WARMUP = 3

    def __init__(self, body, streams: Streams, data: torch.Tensor, B: int, nz: int,
                 generators: list[torch.Generator]):
        self.body, self.streams, self.data, self.B, self.nz = body, streams, data, B, nz
        self.generators = generators
        self.side = torch.cuda.Stream()
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(self, start: int, g_step: bool) -> tuple:
        real, z = self.streams.batch(self.data, start, self.B), self.streams.randn(self.B, self.nz)
        self.calls += 1
        if self.calls <= self.WARMUP:
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                out = self.body(real, z, g_step)
            torch.cuda.current_stream().wait_stream(self.side)
            return out
        if self.graph is None:
            self.capture(real, z, g_step)
        self.real.copy_(real)
        self.z.copy_(z)
        self.graph.replay()
        return self.out

    def capture(self, real: torch.Tensor, z: torch.Tensor, g_step: bool) -> None:
        self.real, self.z = real.clone(), z.clone()
        graph = torch.cuda.CUDAGraph()
        if self.generators:
            register = getattr(graph, "register_generator_state", None)
            if register is None:
                raise RuntimeError(f"this PyTorch ({torch.__version__}) cannot register a generator of its own "
                                   "with a CUDA graph (the pack's dropout masks); run without graph")
            for g in self.generators:
                register(g)
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            self.out = self.body(self.real, self.z, g_step)
        self.graph = graph


def train_pack(configs: list[TrainConfig], data: torch.Tensor, scorer: Scorer, samples_dir: Path | None = None,
               device: str | torch.device = "auto", record_losses: bool = False,
               masks: Masks | None = None, speed: Speed | None = None, on_epoch: EpochHook | None = None,
               stop: StopHook | None = None, step_clock: StepClock | None = None, init: Init = "reference"
               ) -> list[TrainResult]:
    """Train K configs of one shape_key() together; one TrainResult per config, in their order.

    masks: where dropout masks come from, "reference" or "pack" (default `dropout_masks_for`).
    speed: the engine's speed switches (`Speed`; default none: fp32, eager), measured by
           harness.gpucheck; bf16 and TF32 change the arithmetic, so no trajectory can follow the
           fp32 reference (see PackOptimizer on EBGAN), only its statistics can. SpeedUnsupported
           if a switch cannot apply here.
    on_epoch, stop, step_clock: as in train.train.
    init: "reference" (each member as its reference run) or "random" (see build_pack).
    """
    if len({cfg.shape_key() for cfg in configs}) != 1:
        raise ValueError("train_pack: the configs must share one shape_key()")
    if len(configs) > 1 and not configs[0].spec.packs:
        raise ValueError(f"train_pack: family {configs[0].family} does not pack; train its configs one by one")
    device = pick_device(str(device))
    speed = speed or Speed()
    speed.check(device, configs[0].spec)
    order = member_order(configs)
    cfgs = [configs[k] for k in order]                      # pack order; results go back in `configs` order
    with matmul_precision(speed.tf32):
        results = run(lambda: Pack(cfgs, device, masks or dropout_masks_for(device), speed, init), cfgs, data,
                      scorer, samples_dir, device, record_losses, on_epoch, stop, step_clock)
    back: list[TrainResult | None] = [None] * len(cfgs)
    for k, result in enumerate(results):
        back[order[k]] = result
    return back  # type: ignore[return-value]


def generate_pack(G: PackedGenerator, n: int, nz: int, gens: list[torch.Generator], seed_of: torch.Tensor,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """Chunks [K, c, 1024] of n samples per member in eval mode, z drawn from gens[seed_of[k]]."""
    streams = Streams([0] * len(seed_of), device, packed=True)
    return sample_chunks(G, n, nz, gens, streams, seed_of.to(device))


__all__ = ["train_pack", "pack_memory", "score_pack", "generate_pack", "build_pack", "PackOptimizer",
           "StackedLinear", "StackedBatchNorm", "StackedLayerNorm", "member_order", "Speed", "SpeedUnsupported"]


def pack_memory(cfg: TrainConfig, K: int, batch: int = 64) -> int:
    """Bytes a pack of K members of cfg's shape needs: weights, gradients, Adam's m/v/denominator
    and one member's reference modules (6 x 4 bytes per weight), plus activations."""
    params = sum(linear_weights(cfg))
    return int(K * params * 4 * 6 + batch * K * (cfg.sizeG * cfg.nLayerG + IMAGE_DIM * 6) * 4 * 4)
