"""Packed training: K same-shape configs of a grid trained together as ONE model.

    results = train_pack(configs, data, scorer, samples_dir)   # one TrainResult per config

The idea (HFTA, Wang et al. 2021; "model ensembling" with torch.func): K models whose tensors
have identical shapes (`TrainConfig.shape_key()`) are K slices of stacked tensors. Then

- every Linear is one batched matmul over the members    y[k] = x[k] W[k]^T + b[k]   (baddbmm);
- every batch norm normalises each member over its OWN batch (x: [K, B, F], statistics over B),
  with its own affine parameters and running statistics;
- the members' losses are summed, and since  d(sum_j L_j)/d theta_k = dL_k/d theta_k,  each
  member gets exactly the gradient it would get alone;
- each member keeps its own optimizer (Adam or SGD), learning rate, betas/momentum, margin,
  w_PT, dropout, seed and divergence status.

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
class histogram (tests/test_packed.py, with MKL; GAN, EBGAN, EBGAN-PT, Adam and SGD, mixed
seeds, dropout with masks="reference"). Anything less would not do: see PackOptimizer.

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
import time
from itertools import groupby
from pathlib import Path
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from harness import losses
from harness.config import TrainConfig
from harness.metrics import (Scorer, Scores)
from harness.models import IMAGE_DIM, build_models, linear_weights
from harness.train import (SAMPLE_GRID_SEED, SCORE_SEED_OFFSET, EpochHook, TrainResult, pick_device,
                           save_sample_grid, steps_per_epoch, total_steps)

Masks = Literal["reference", "pack"]
DROPOUT_SEED_OFFSET = 20_000   # masks="pack": the pack's mask generator is seeded min(seeds) + this
GENERATE_BATCH = 2000          # as train.generate


# --- the stacked layers ----------------------------------------------------------------------

class StackedLinearFn(torch.autograd.Function):
    """y[k] = x[k] W[k]^T + b[k], with F.linear's backward written out per member:
        dx[k] = dy[k] W[k],   dW[k] = dy[k]^T x[k],   db[k] = sum_B dy[k].
    dW goes straight into the layer's persistent gradient buffer `layer.weight.grad` (summed
    there when the layer is used twice, as D is on real and fake batches): a fresh [K, out, in]
    tensor every step costs page faults that on a CPU rival the matmul itself."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, layer: "StackedLinear") -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.layer = layer
        if weight.shape[1] == 1:  # a 1-unit output as (W x^T)^T: F.linear's matrix-vector rounding
            return torch.baddbmm(bias.unsqueeze(-1), weight, x.transpose(1, 2)).transpose(1, 2)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, dy: torch.Tensor):
        x, weight = ctx.saved_tensors
        dx = torch.bmm(dy, weight) if ctx.needs_input_grad[0] else None
        if ctx.needs_input_grad[1]:
            ctx.layer.add_weight_grad(dy.transpose(1, 2), x)
        db = dy.sum(1) if ctx.needs_input_grad[2] else None
        return dx, None, db, None


class StackedLinear(nn.Module):
    """K independent Linear layers: x [K, B, in] -> y [K, B, out]."""

    def __init__(self, K: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(K, d_out, d_in))   # W[k] as nn.Linear stores it
        self.bias = nn.Parameter(torch.zeros(K, d_out))
        self.grad_is_stale = True                                  # set by PackOptimizer.zero_grad
        self.second_use: torch.Tensor | None = None

    def add_weight_grad(self, dy_t: torch.Tensor, x: torch.Tensor) -> None:
        """weight.grad (+)= dy^T x, in place (a second use goes through a buffer of its own)."""
        if self.weight.grad is None:
            self.weight.grad = torch.empty_like(self.weight)
            self.grad_is_stale = True
        if self.grad_is_stale:
            torch.bmm(dy_t, x, out=self.weight.grad)
            self.grad_is_stale = False
        else:
            if self.second_use is None:
                self.second_use = torch.empty_like(self.weight)
            self.weight.grad.add_(torch.bmm(dy_t, x, out=self.second_use))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return StackedLinearFn.apply(x, self.weight, self.bias, self)


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
                          rates: list[float], rng: DropoutRNG | None) -> list[nn.Module]:
    """`n` blocks of StackedLinear -> [StackedBatchNorm] -> ReLU -> [StackedDropout]."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(StackedLinear(K, d_in if i == 0 else width, width))
        if i > 0 or bn_first:
            layers.append(StackedBatchNorm(K, width))
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
    """K Discriminators (GAN: x [K, N, 1024] -> logits [K, N]) or K AutoEncoderDs
    (EBGAN: x -> (reconstruction [K, N, 1024], code [K, N, sizeD]))."""

    def __init__(self, K: int, family: str, nLayerD: int, sizeD: int, rates: list[float], rng: DropoutRNG):
        super().__init__()
        self.family = family
        self.body = nn.Sequential(*stacked_hidden_layers(K, nLayerD - 1, IMAGE_DIM, sizeD, False, rates, rng))
        self.head = StackedLinear(K, sizeD, 1 if family == "gan" else IMAGE_DIM)

    def forward(self, x: torch.Tensor):
        h = self.body(x)
        return self.head(h).squeeze(-1) if self.family == "gan" else (self.head(h), h)


@torch.no_grad()
def load_member(packed: nn.Module, k: int, member: nn.Module) -> None:
    """Copy a reference module's Linear and BatchNorm1d tensors (in module order) into slice k."""
    stacked = [m for m in packed.modules() if isinstance(m, (StackedLinear, StackedBatchNorm))]
    own = [m for m in member.modules() if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
    assert len(own) == len(stacked), "the member does not fit the pack's shape"
    for s, o in zip(stacked, own):
        for name in ("weight", "bias") + (("running_mean", "running_var") if isinstance(o, nn.BatchNorm1d) else ()):
            getattr(s, name)[k].copy_(getattr(o, name))


def build_pack(configs: list[TrainConfig], device: torch.device, masks: Masks
               ) -> tuple[PackedGenerator, PackedDiscriminator]:
    """The packed G and D of `configs`, member k initialized exactly as train.py initializes it."""
    c, K = configs[0], len(configs)
    rng = DropoutRNG(masks, device, min(cfg.seed for cfg in configs))
    G = PackedGenerator(K, c.nz, c.nLayerG, c.sizeG)
    D = PackedDiscriminator(K, c.family, c.nLayerD, c.sizeD,
                            [cfg.dropoutRate if cfg.dropoutD else 0.0 for cfg in configs], rng)
    for k, cfg in enumerate(configs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)               # as train.py: the initialization ...
            G_k, D_k = build_models(cfg)
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
    [start:end] of every stacked parameter. One step applies, to all blocks at once, the tensor
    ops of torch.optim.Adam / SGD (their default single-tensor code, eps = 1e-8, no weight
    decay), as torch._foreach_* ops with one scalar per block:
        Adam:  m <- m + (1 - beta1)(g - m);   v <- beta2 v + (1 - beta2) g^2
               w <- w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        SGD:   b <- momentum b + g  (b = g at t = 1; no b if momentum = 0);   w <- w - lr b
    so each member's update is bit for bit torch's (and, on a GPU, a few kernels for the whole
    pack rather than a few per member and parameter). Bit-equality matters: in EBGAN's first
    steps Adam's update is about lr * sign(g) for gradients that are nearly 0, and a 1-ulp
    difference grows ~1e4-fold within 6 steps (we measured it with torch's fused Adam), so only
    identical arithmetic keeps a member on its reference trajectory. Adam's denominator goes
    into a preallocated buffer (torch allocates it every step: page faults, on a CPU).
    Frozen members get zero gradients: their updates are exactly zero.
    """

    def __init__(self, net: nn.Module, kinds: list[str], configs: list[TrainConfig]):
        self.params = params = list(net.parameters())
        self.linears = [m for m in net.modules() if isinstance(m, StackedLinear)]
        kept = {id(m.weight) for m in self.linears}              # gradients kept in place (StackedLinearFn)
        self.fresh = [p for p in params if id(p) not in kept]    # gradients autograd allocates
        self.frozen: torch.Tensor | None = None
        self.t = 0
        self.adam: list[tuple] = []   # (start, end, cfg, m, v, denominator), one tensor per parameter
        self.sgd: list[tuple] = []    # (start, end, cfg, momentum buffers or [])
        start = 0
        for _, run in groupby(range(len(kinds)), key=lambda k: optimizer_settings(kinds[k], configs[k])):
            end = start + len(list(run))
            cfg = configs[start]

            def zeros() -> list[torch.Tensor]:
                return [torch.zeros_like(p[start:end]) for p in params]
            if kinds[start] == "adam":
                self.adam.append((start, end, cfg, zeros(), zeros(), zeros()))
            else:
                self.sgd.append((start, end, cfg, zeros() if cfg.sgdMomentum != 0 else []))
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
        self.t = t = self.t + 1
        for m in self.linears:
            if m.grad_is_stale:                                   # no gradient this step
                m.add_weight_grad(torch.zeros_like(m.weight[:, :, :1]), torch.zeros_like(m.weight[:, :1, :]))
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            elif self.frozen is not None:
                p.grad.index_fill_(0, self.frozen, 0.0)
        if self.adam:
            w, g, m, v, d, scalars = [], [], [], [], [], []
            for start, end, cfg, m_b, v_b, d_b in self.adam:
                w_b, g_b = self.rows(start, end)
                w, g, m, v, d = w + w_b, g + g_b, m + m_b, v + v_b, d + d_b
                b1, b2 = cfg.adamBeta1, cfg.adamBeta2
                scalars += [(1 - b1, b2, 1 - b2, (1 - b2 ** t) ** 0.5, -cfg.lr / (1 - b1 ** t))] * len(w_b)
            one_minus_b1, b2, one_minus_b2, bc2_sqrt, neg_step = (list(x) for x in zip(*scalars))
            torch._foreach_lerp_(m, g, one_minus_b1)                  # m.lerp_(g, 1 - beta1)
            torch._foreach_mul_(v, b2)                                # v.mul_(beta2)
            torch._foreach_addcmul_(v, g, g, one_minus_b2)            #  .addcmul_(g, g, value=1 - beta2)
            torch._foreach_copy_(d, v)
            torch._foreach_sqrt_(d)                                   # denom = (v.sqrt()
            torch._foreach_div_(d, bc2_sqrt)                          #          / sqrt(1 - beta2^t))
            torch._foreach_add_(d, 1e-8)                              #          .add_(eps)
            torch._foreach_addcdiv_(w, m, d, neg_step)                # w.addcdiv_(m, denom, value=-step_size)
        for start, end, cfg, b in self.sgd:
            w, g = self.rows(start, end)
            if b:                                                     # b <- momentum b + g
                if t == 1:
                    torch._foreach_copy_(b, g)
                else:
                    torch._foreach_mul_(b, cfg.sgdMomentum)
                    torch._foreach_add_(b, g)
                g = b
            torch._foreach_add_(w, g, alpha=-cfg.lr)                  # w.add_(g, alpha=-lr)

    @torch.no_grad()
    def freeze(self, members: list[int]) -> None:
        """Zero the members' weights and optimizer state; from now on their gradients are zeroed."""
        for p in self.params:
            p[members] = 0.0
        for start, end, _, *state in self.adam + self.sgd:
            rows = [k - start for k in members if start <= k < end]
            for buffer in (x for buffers in state for x in buffers):
                buffer[rows] = 0.0
        frozen = sorted(set(members) | set(self.frozen.tolist() if self.frozen is not None else []))
        self.frozen = torch.tensor(frozen, device=self.params[0].device)

    def finite(self) -> torch.Tensor:
        """[K] bool: every weight of member k is finite."""
        return torch.stack([torch.isfinite(p).flatten(1).all(1) for p in self.params]).all(0)


# --- device choices (plain functions, so that CPU tests cover the logic) -------------------------

def dropout_masks_for(device: torch.device) -> Masks:
    """Reference-equal masks on CPU; one fast pack draw on accelerators (see the module docstring)."""
    return "reference" if device.type == "cpu" else "pack"


def autocast_dtype(device: torch.device, bf16: bool, bf16_supported: bool | None = None) -> torch.dtype | None:
    """bf16 autocast only where asked for AND on a CUDA device that supports it; else None (fp32)."""
    if not bf16 or device.type != "cuda":
        return None
    supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return torch.bfloat16 if supported else None


# --- the losses of a pack (harness.losses reduce over the last dim: [K, B] -> [K]) --------------

def pack_d_loss(family: str, D: PackedDiscriminator, real: torch.Tensor, fake: torch.Tensor,
                margin: torch.Tensor) -> torch.Tensor:
    """[K] D losses, as train.d_loss; margin [K, 1]."""
    if family == "gan":
        return losses.gan_d_loss(D(real), D(fake))
    (recon_real, _), (recon_fake, _) = D(real), D(fake)
    return losses.ebgan_d_loss(losses.energy(real, recon_real), losses.energy(fake, recon_fake), margin)


def pack_g_loss(family: str, D: PackedDiscriminator, fake: torch.Tensor, wPT: torch.Tensor | None) -> torch.Tensor:
    """[K] G losses, as train.g_loss; wPT [K] (None: no member has the pulling-away term)."""
    if family == "gan":
        return losses.gan_g_loss(D(fake))
    recon_fake, code_fake = D(fake)
    loss = losses.ebgan_g_loss(losses.energy(fake, recon_fake))
    if wPT is not None:  # torch.where leaves the EBGAN members' losses untouched
        loss = torch.where(wPT > 0, loss + wPT * losses.pulling_away(code_fake), loss)
    return loss


# --- sampling and scoring ----------------------------------------------------------------------

@torch.no_grad()
def generate_pack(G: PackedGenerator, n: int, nz: int, gens: list[torch.Generator], seed_of: torch.Tensor,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """Chunks [K, c, 1024] of n samples per member in eval mode, z drawn per seed as train.generate draws it."""
    was_training = G.training
    G.eval()
    try:
        for i in range(0, n, GENERATE_BATCH):
            c = min(GENERATE_BATCH, n - i)
            z = torch.stack([torch.randn(c, nz, generator=g, device=device) for g in gens])
            yield G(z[seed_of])
    finally:
        G.train(was_training)


def score_pack(scorer: Scorer, chunks: Iterator[torch.Tensor], members: list[int], fid: bool) -> dict[int, Scores]:
    """Scorer.score of each member's samples, classified chunk by chunk (memory ~ K x one chunk)."""
    outputs: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {k: ([], []) for k in members}
    for chunk in chunks:
        for k in members:
            log_p, feats = scorer.classify(chunk[k])
            outputs[k][0].append(log_p)
            outputs[k][1].append(feats)
    return {k: scorer.scores_from(torch.cat(log_ps), torch.cat(feats), fid=fid)
            for k, (log_ps, feats) in outputs.items()}


# --- the trainer -------------------------------------------------------------------------------

def train_pack(configs: list[TrainConfig], data: torch.Tensor, scorer: Scorer, samples_dir: Path | None = None,
               device: str | torch.device = "auto", record_losses: bool = False,
               masks: Masks | None = None, bf16: bool = False, on_epoch: EpochHook | None = None
               ) -> list[TrainResult]:
    """Train K configs of one shape_key() together; one TrainResult per config, in their order.

    masks: where dropout masks come from, "reference" or "pack" (default `dropout_masks_for`).
    bf16:  bf16 autocast of the forward passes, CUDA only, off by default: no trajectory can
           follow the fp32 reference (see PackOptimizer on EBGAN), only the statistics can.
    on_epoch: as in train.train, with the I' of every member still training.
    """
    start = time.perf_counter()
    if len({cfg.shape_key() for cfg in configs}) != 1:
        raise ValueError("train_pack: the configs must share one shape_key()")
    device = pick_device(str(device))
    order = member_order(configs)
    cfgs = [configs[k] for k in order]                      # pack order; results go back in `configs` order
    c, K = cfgs[0], len(cfgs)
    data = data[: c.trainImages].to(device)
    G, D = build_pack(cfgs, device, masks or dropout_masks_for(device))
    opt_d = PackOptimizer(D, [m.optimD for m in cfgs], cfgs)
    opt_g = PackOptimizer(G, [m.optimG for m in cfgs], cfgs)
    amp = autocast_dtype(device, bf16)

    def forward_precision():
        return torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()

    seeds = sorted({m.seed for m in cfgs})
    seed_of = torch.tensor([seeds.index(m.seed) for m in cfgs], device=device)
    streams = [torch.Generator(device).manual_seed(s) for s in seeds]            # data order and z
    score_gens = [torch.Generator(device).manual_seed(s + SCORE_SEED_OFFSET) for s in seeds]
    margin = torch.tensor([m.margin for m in cfgs], device=device).view(K, 1)
    wPT = torch.tensor([m.wPT for m in cfgs], device=device) if any(m.wPT > 0 for m in cfgs) else None

    n_steps, spe, B = total_steps(c), steps_per_epoch(c), c.batchSize
    alive = torch.ones(K, dtype=torch.bool, device=device)  # kept on the device: no host sync per step
    steps_done = torch.full((K,), n_steps, device=device)
    last = torch.zeros(K, 2, device=device)                  # (lossD, lossG) of each member's last step
    history: list[torch.Tensor] = []
    per_epoch: list[list[float]] = [[] for _ in range(K)]
    alive_now, score_time = list(range(K)), 0.0

    def end_of_epoch(step: int) -> list[int]:
        """Non-finite weights end a member (as in train.py); freeze the newly ended; who is alive."""
        nonlocal alive, steps_done
        ok = opt_g.finite() & opt_d.finite()
        steps_done = torch.where(alive & ~ok, step + 1, steps_done)
        alive = alive & ok
        now = [k for k, a in enumerate(alive.tolist()) if a]  # the one host sync of an epoch
        ended = sorted(set(alive_now) - set(now))
        if ended:
            opt_d.freeze(ended)
            opt_g.freeze(ended)
        return now

    loop_start = time.perf_counter()
    for step in range(n_steps):
        if step % spe == 0:
            orders = [torch.randperm(len(data), generator=g, device=device) for g in streams]
        pos = (step % spe) * B
        real = data[torch.stack([o[pos:pos + B] for o in orders])[seed_of]]              # [K, B, 1024]
        z = torch.stack([torch.randn(B, c.nz, generator=g, device=device) for g in streams])[seed_of]
        with forward_precision():
            fake = G(z)
            l_d = pack_d_loss(c.family, D, real, fake.detach(), margin)                  # D step
        opt_d.zero_grad()
        l_d.sum().backward()
        opt_d.step()

        D.requires_grad_(False)                       # the G step needs no gradients of D's weights
        with forward_precision():
            l_g = pack_g_loss(c.family, D, fake, wPT)                                    # G step, through the new D
        opt_g.zero_grad()
        l_g.sum().backward(inputs=opt_g.params)
        opt_g.step()
        D.requires_grad_(True)

        step_losses = torch.stack([l_d.detach(), l_g.detach()], 1).float()
        if record_losses:
            history.append(step_losses)
        last = torch.where(alive[:, None], step_losses, last)
        ok = torch.isfinite(step_losses).all(1)
        steps_done = torch.where(alive & ~ok, step + 1, steps_done)
        alive = alive & ok
        if (step + 1) % spe == 0:                                                        # end of a full epoch
            alive_now = end_of_epoch(step)
            if not alive_now:
                break
            t = time.perf_counter()
            chunks = generate_pack(G, c.epochScoreSamples, c.nz, score_gens, seed_of, device)
            epoch_scores = score_pack(scorer, chunks, alive_now, fid=False)
            for k, s in epoch_scores.items():
                per_epoch[k].append(s.Iprime)
            score_time += time.perf_counter() - t
            if on_epoch is not None:
                on_epoch((step + 1) // spe, {cfgs[k].config_id: s.Iprime for k, s in epoch_scores.items()})
    train_time = time.perf_counter() - loop_start - score_time
    steps_run = step + 1
    if alive_now:
        alive_now = end_of_epoch(n_steps - 1)           # train.py's final check of the weights

    final: dict[int, Scores] = {}
    if alive_now:
        final = score_pack(scorer, generate_pack(G, c.scoreSamples, c.nz, score_gens, seed_of, device),
                           alive_now, fid=True)
        if samples_dir is not None:
            fixed_z = torch.Generator(device).manual_seed(SAMPLE_GRID_SEED)
            for grids in generate_pack(G, 64, c.nz, [fixed_z], torch.zeros_like(seed_of), device):
                for k in alive_now:
                    save_sample_grid(grids[k], Path(samples_dir) / f"{cfgs[k].config_id}.png")

    steps_list, last_list = steps_done.tolist(), last.tolist()
    hist = torch.stack(history).transpose(0, 1).tolist() if history else [[] for _ in range(K)]
    wall = time.perf_counter() - start
    results: list[TrainResult | None] = [None] * K
    for k, cfg in enumerate(cfgs):
        ok = k in final
        score_fields = (final[k] if ok else Scores.missing()).to_dict()
        results[order[k]] = TrainResult(
            status="ok" if ok else "diverged", IprimePerEpoch=per_epoch[k],
            lossD=last_list[k][0], lossG=last_list[k][1], wallTime=wall,
            stepsPerSec=steps_run / max(train_time, 1e-9), steps=int(steps_list[k]), device=str(device),
            samplesPath=str(Path(samples_dir) / f"{cfg.config_id}.png") if ok and samples_dir is not None else None,
            lossHistory=[tuple(x) for x in hist[k][: int(steps_list[k])]], **score_fields)
    return results  # type: ignore[return-value]


def pack_memory(cfg: TrainConfig, K: int, batch: int = 64) -> int:
    """Bytes a pack of K members of cfg's shape needs: weights, gradients, Adam's m/v/denominator
    and one member's reference modules (6 x 4 bytes per weight), plus activations."""
    params = sum(linear_weights(cfg))
    return int(K * params * 4 * 6 + batch * K * (cfg.sizeG * cfg.nLayerG + IMAGE_DIM * 6) * 4 * 4)
