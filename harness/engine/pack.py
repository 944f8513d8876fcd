"""Packed training: K same-shape configs of a grid trained together as ONE model.

    results = train_pack(configs, data, scorer, samples_dir)   # one TrainResult per config

The training loop is harness.engine.loop.run, shared with the reference trainer; this module
gives it the `Pack` backend: stacked models (harness.nets.stacked), per-member optimizers
(harness.engine.pack_optim), the speed switches (harness.engine.cuda). The members' losses are
summed, and since  d(sum_j L_j)/d theta_k = dL_k/d theta_k,  each member gets exactly the
gradient it would get alone. Each member keeps its own optimizer, learning rate, betas or
momentum, family settings (`hp` tensors of shape [K]), family state (BEGAN's k_t), dropout, seed,
init stds (initStdG, initStdD) and divergence status; settings that shape the loop (WGAN-GP's
nCritic) or the layers (normG, normD) are in `shape_key()`, so members share them.

How a member stays equal to its run by the reference trainer (harness.engine.reference):
- initialization: the member's reference G and D are built under `torch.manual_seed(seed)`,
  exactly as the reference trainer builds them, and their tensors are copied into the stacks;
- data order and z: each seed's stream (harness.engine.streams) draws them as a single run of
  that seed does, gathered per member, so packs need not be split by seed;
- the optimizers repeat torch.optim.Adam / SGD op for op (`PackOptimizer`);
- scoring z and the sample grid's z are drawn per seed exactly as the reference draws them;
- dropout masks: masks="reference" (the default on CPU) draws member k's masks from the global
  RNG stream its reference run uses after initialization (see harness.nets.stacked.DropoutRNG).
On CPU a member then follows its reference run bit for bit: per-step losses, steps, I', FID,
class histogram (tests/engine/test_pack.py, tests/families/test_families.py). Anything less
would not do: see PackOptimizer.

Divergence, per member: a non-finite loss (checked every step on the device, no host sync)
or a non-finite weight (checked at every epoch end) marks the member `diverged` with the
steps it did. At the next epoch end its weights and optimizer state are set to zero and
from then on its gradients are zeroed: it is frozen. No op reduces over the member dim, so
a NaN in one member cannot reach another, even before it is frozen.

On a GPU everything lives on the training device (stacks, data, generators), the optimizer is
a few foreach kernels per step for the whole pack, the host syncs once per epoch, and the
masks default to "pack".

Timing fields of each member's TrainResult: `stepsPerSec` is the pack's steps per second
(each member did that many steps per second; the pack's model-steps/s is K times it), and
`wallTime` is the pack's wall time (training and scoring), what each member waited.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from harness import nets
from harness.config import TrainConfig
from harness.engine.cuda import (
    GraphedSteps,
    Speed,
    autocast_dtype,
    compiled,
    dropout_masks_for,
    fail_on_recompile_limit,
    matmul_precision,
)
from harness.engine.loop import EpochHook, StopHook, TrainResult, eager_steps, run
from harness.engine.pack_optim import PackOptimizer, member_order
from harness.engine.resume import Checkpoint
from harness.engine.scoring import sample_chunks
from harness.engine.streams import Streams
from harness.engine.timing import StepClock, pick_device
from harness.metrics import Scorer
from harness.nets.plain import LayerNorm
from harness.nets.stacked import (
    DropoutRNG,
    Masks,
    PackedGenerator,
    StackedBatchNorm,
    StackedDropout,
    StackedLayerNorm,
    StackedLinear,
)

Init = Literal["reference", "random"]


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


@torch.no_grad()
def normal_per_member(weight: torch.Tensor, stds: list[float]) -> None:
    """Stacked weights [K, ...] ~ N(0, stds[k]) in slice k: one draw for the stack when they are equal."""
    if len(set(stds)) == 1:
        nn.init.normal_(weight, 0.0, stds[0])
    else:
        for k, std in enumerate(stds):
            nn.init.normal_(weight[k], 0.0, std)


def build_pack(configs: list[TrainConfig], device: torch.device, masks: Masks, init: Init = "reference"
               ) -> tuple[nn.Module, nn.Module]:
    """The packed G and D of `configs` (harness.nets.build_stacked).

    init="reference": member k initialized exactly as the reference trainer initializes it
    (harness.nets.build, on the CPU, member by member), its own initStdG / initStdD included.
    init="random": the stacks drawn at once on the device from the same distributions (N(0, std)
    weights, each member's std, zero biases), not any member's reference initialization: for
    throughput, where building 96 members one by one would cost more than the steps timed."""
    rng = DropoutRNG(masks, device, min(cfg.seed for cfg in configs))
    if init == "random":
        with torch.device(device):
            G, D = nets.build_stacked(configs, rng)
        for net, stds in ((G, [cfg.initStdG for cfg in configs]), (D, [cfg.initStdD for cfg in configs])):
            for m in net.modules():
                if isinstance(m, StackedLinear):
                    normal_per_member(m.weight, stds)
        rng.members = [torch.Generator().manual_seed(cfg.seed) if cfg.dropoutD else None for cfg in configs]
        return G, D
    G, D = nets.build_stacked(configs, rng)
    for k, cfg in enumerate(configs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)               # as the reference trainer: the initialization ...
            G_k, D_k = nets.build(cfg)
            # ... and then the global stream its dropout masks come from
            rng.members.append(torch.Generator().set_state(torch.get_rng_state()) if cfg.dropoutD else None)
        load_member(G, k, G_k)
        load_member(D, k, D_k)
    return G.to(device), D.to(device)


class Pack:
    """K members as one stacked model, each with its own optimizer (harness.engine.loop.Backend)."""
    packed = True

    def __init__(self, cfgs: list[TrainConfig], device: torch.device, masks: Masks, speed: Speed,
                 init: Init = "reference", capturable: bool = False):
        G, D = build_pack(cfgs, device, masks, init)
        if speed.compile:  # dynamo traces plain autograd ops, not StackedLinearFn's in-place gradient
            for m in (*G.modules(), *D.modules()):
                if isinstance(m, StackedLinear):
                    m.grad_in_place = False
            # this pack's graphs only: past packs' cached graphs would count against dynamo's
            # recompile limit, past which it runs eagerly; make that an error, never silent
            torch._dynamo.reset()
            fail_on_recompile_limit()
        # a CUDA graph replays the step for every remaining step: only where Speed.applied keeps
        # it (families whose D steps per G step are 1: the step is then always the same D + G step)
        self.graphed = speed.applied(cfgs[0].spec, cfgs[0].settings)[0].graph
        capturable = self.graphed or capturable   # capturable alone: a graph pack's eager twin
        self.opt_d = PackOptimizer(D, [m.optimD for m in cfgs], cfgs, capturable=capturable)
        self.opt_g = PackOptimizer(G, [m.optimG for m in cfgs], cfgs, capturable=capturable)
        self.g_params = self.opt_g.params
        self.G, self.D = (compiled(G), compiled(D)) if speed.compile else (G, D)
        self.device, self.amp = device, autocast_dtype(device, speed.bf16)
        dropout = [m for m in D.modules() if isinstance(m, StackedDropout)]
        self.rng = dropout[0].rng if dropout else None
        self.generators = [self.rng.pack] if self.rng is not None and self.rng.pack is not None else []

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

    def dropout_generators(self) -> list[torch.Generator | None]:
        """Where the masks come from: each member's (None without dropout), then the pack's."""
        return ([] if self.rng is None else self.rng.members) + self.generators

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_d": self.opt_d.state_dict(),
                "opt_g": self.opt_g.state_dict(),
                "dropout": [g.get_state() if g is not None else None for g in self.dropout_generators()]}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        for g, saved in zip(self.dropout_generators(), state["dropout"]):
            if g is not None:
                g.set_state(saved)

    def freeze(self, members: list[int]) -> None:
        self.opt_d.freeze(members)
        self.opt_g.freeze(members)


def train_pack(configs: list[TrainConfig], data: torch.Tensor, scorer: Scorer, samples_dir: Path | None = None,
               device: str | torch.device = "auto", record_losses: bool = False,
               masks: Masks | None = None, speed: Speed | None = None, on_epoch: EpochHook | None = None,
               stop: StopHook | None = None, step_clock: StepClock | None = None, init: Init = "reference",
               capturable: bool = False, checkpoint: Checkpoint | None = None) -> list[TrainResult]:
    """Train K configs of one shape_key() together; one TrainResult per config, in their order.

    masks: where dropout masks come from, "reference" or "pack" (default `dropout_masks_for`).
    speed: the engine's speed switches (`Speed`; default none: fp32, eager), measured by
           harness.gpucheck; bf16 and TF32 change the arithmetic, so no trajectory can follow the
           fp32 reference (see PackOptimizer on EBGAN), only its statistics can. SpeedUnsupported
           if a switch cannot apply here.
    on_epoch, stop, step_clock, checkpoint: as in train.train.
    init: "reference" (each member as its reference run) or "random" (see build_pack).
    capturable: torch's capturable Adam without a CUDA graph (CUDA only): a graph pack's eager
           twin, the same arithmetic step by step, which the GPU check holds the graph's replays to.
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
        results = run(lambda: Pack(cfgs, device, masks or dropout_masks_for(device), speed, init, capturable), cfgs,
                      data, scorer, samples_dir, device, record_losses, on_epoch, stop, step_clock, checkpoint)
    back: list[TrainResult | None] = [None] * len(cfgs)
    for k, result in enumerate(results):
        back[order[k]] = result
    return back  # type: ignore[return-value]


def generate_pack(G: PackedGenerator, n: int, nz: int, gens: list[torch.Generator], seed_of: torch.Tensor,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """Chunks [K, c, 1024] of n samples per member in eval mode, z drawn from gens[seed_of[k]]."""
    streams = Streams([0] * len(seed_of), device, packed=True)
    return sample_chunks(G, n, nz, gens, streams, seed_of.to(device))
