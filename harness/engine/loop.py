"""The training loop, once, for the reference trainer and the packed engine.

    result = harness.engine.train(cfg, data, scorer, samples_dir)          # one config, plain torch
    results = harness.engine.train_pack(configs, data, scorer)             # K configs as one stacked model

`run` below is the loop both use: the D and G steps, divergence, epoch scoring and result
assembly are written here once (`Loop`, one method per step of the algorithm). What it trains
comes from a backend: `harness.engine.reference.Reference` (the family's plain nn.Modules and
torch.optim, one config) or `harness.engine.pack.Pack` (K configs stacked). What the steps
compute comes from the config's family (`harness.families`): its D and G losses, its D steps
per G step.

The loop (DCGAN's, the EBGAN paper's): each step draws a real batch and z, G makes fakes, D
takes one step on the real batch and the detached fakes; every `d_steps`-th step G then takes
one step through the just-updated D: on the same fakes when d_steps is 1, on fakes of a fresh
z otherwise (WGAN-GP's Algorithm 1). A step is thus one D update; an epoch is a pass of D over
the training set (for every family, so that epochs compare), and `steps` counts D updates.

No host sync per step: divergence (a non-finite loss) is tracked on the device and read once
per epoch, when the epoch is scored. The packed engine's members follow their reference runs
bit for bit on CPU (tests/engine/test_pack.py).
"""
from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from harness import datasets
from harness.config import TrainConfig, g_steps, steps_per_epoch, total_steps
from harness.convergence import still_improving_any
from harness.engine import timing
from harness.engine.resume import Checkpoint
from harness.engine.scoring import PICTURE_SEED, sample_chunks, score_pack
from harness.engine.streams import Hyper, Streams
from harness.metrics import Scorer, Scores

# Called after each full epoch's scoring with (epoch number from 1, {configId: I'}) for the
# configs still training; the sweep reports it to Ray Tune as an intermediate result.
EpochHook = Callable[[int, dict[str, float]], None]
# Asked before every step; True ends training there (`Stopped`): Ctrl-C, SIGTERM, a deadline.
StopHook = Callable[[], bool]


class Stopped(Exception):
    """Training was asked to stop (`stop()` returned True): raised at the next step; nothing of
    the run is returned."""


@dataclass
class TrainResult:
    status: str                       # "ok" | "diverged"
    Iprime: float                     # I' on cfg.scoreSamples samples at the end (NaN if diverged)
    IprimePerEpoch: list[float]       # I' on cfg.epochScoreSamples samples after each full epoch
    inceptionScore: float
    fid: float
    classHist: list[int]
    IprimeSetA: float                 # I' of two disjoint halves of the final samples
    IprimeSetB: float                 #   (Scores.scores_from): the sampling spread
    lossD: float                      # D's loss at the last step, G's at its last step
    lossG: float
    wallTime: float                   # seconds, training and scoring
    stepsPerSec: float                # training steps (one D update; + one G update every d_steps) per second
    steps: int                        # D updates (until it diverged, if it did)
    gSteps: int                       # G updates (one every d_steps D updates)
    device: str
    host: str = field(default_factory=socket.gethostname)
    samplesPath: str | None = None
    error: str | None = None
    # A dataset's own scores (a mixture's modesCaptured, ...): result columns of their own.
    extraScores: dict[str, float] = field(default_factory=dict)
    # Per-epoch measures, result columns <name>PerEpoch: a family's (its `epoch_metrics`, e.g.
    # BEGAN's convergence measure M, one mean over each full epoch's G steps) and the dataset's
    # own scores on the epoch's samples (a mixture's modesCaptured, ...), as IprimePerEpoch.
    epochMetrics: dict[str, list[float]] = field(default_factory=dict)
    # Over the last quarter of its scored epochs, did any of the dataset's convergence measures
    # still rise beyond its scatter (harness.convergence)? None: too few scored epochs to tell.
    stillImproving: bool | None = None
    # The epoch its last resume started from (harness.engine.resume: a trial killed mid-run goes
    # on from its last saved epoch); None: it ran straight through.
    resumedAtEpoch: int | None = None
    # Per-step losses, for equivalence tests; not written to the results table.
    lossHistory: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def to_row(self) -> dict:
        row = asdict(self)
        row.pop("lossHistory")
        row.update({f"{name}PerEpoch": values for name, values in row.pop("epochMetrics").items()})
        row.update(row.pop("extraScores"))
        return row

    @classmethod
    def failed(cls, message: str) -> dict:
        """The row of a config whose trial failed: status error, its message, no scores."""
        return cls(status="error", error=message, IprimePerEpoch=[], lossD=float("nan"), lossG=float("nan"),
                   wallTime=float("nan"), stepsPerSec=float("nan"), steps=0, gSteps=0, device="", host="",
                   **Scores.missing().core()).to_row()


class Backend(Protocol):
    """What the loop trains: K members' G and D (inputs [K, B, ...]; [B, ...] when not packed)."""
    packed: bool
    G: nn.Module
    D: nn.Module
    g_params: list[torch.Tensor]
    opt_d: torch.optim.Optimizer
    opt_g: torch.optim.Optimizer

    def precision(self) -> contextlib.AbstractContextManager: ...
    def finite(self) -> torch.Tensor: ...             # [K] bool: every weight of member k is finite
    def freeze(self, members: list[int]) -> None: ...  # stop training these members
    def stepper(self, body, streams: Streams, data: torch.Tensor, B: int, nz: int
                ) -> Callable[[int, bool], tuple]: ...  # take_step(batch start, g_step) -> body's losses
    def state_dict(self) -> dict: ...                  # weights, buffers, optimizers, dropout generators
    def load_state_dict(self, state: dict) -> None: ...


def eager_steps(body, streams: Streams, data: torch.Tensor, B: int, nz: int) -> Callable[[int, bool], tuple]:
    """The loop's steps as plain calls: the batch at `start` of this epoch's order, z, `body`."""
    def take_step(start: int, g_step: bool) -> tuple:
        return body(streams.batch(data, start, B), streams.randn(B, nz), g_step)
    return take_step


class Loop:
    """One run of the loop for the members `cfgs` (one shape_key()) on a backend: its state on
    the device, and one method per step of the algorithm."""

    def __init__(self, net: Backend, cfgs: list[TrainConfig], data: torch.Tensor, scorer: Scorer,
                 device: torch.device, record_losses: bool):
        self.net, self.cfgs, self.data, self.scorer, self.device = net, cfgs, data, scorer, device
        c, K = cfgs[0], len(cfgs)
        self.c, self.K, self.family = c, K, c.spec
        self.streams = Streams([cfg.seed for cfg in cfgs], device, net.packed)
        self.hp = Hyper(cfgs, device, net.packed)
        self.state = self.family.init_state(self.hp)
        self.n_steps, self.spe, self.B = total_steps(c), steps_per_epoch(c), c.batchSize
        self.d_steps = self.family.d_steps(c.settings)
        self.alive = torch.ones(K, dtype=torch.bool, device=device)  # on the device: no host sync per step
        self.steps_done = torch.full((K,), self.n_steps, device=device)
        self.last = torch.zeros(K, 2, device=device)                  # (lossD, lossG) of each member's last step
        self.l_g = torch.zeros(K, device=device)                      # G's loss at its latest step
        self.sums = {m: torch.zeros(K, device=device) for m in self.family.epoch_metrics}
        self.g_steps = 0                                              # G steps in this epoch
        self.history: list[torch.Tensor] | None = [] if record_losses else None
        self.per_epoch: list[list[float]] = [[] for _ in range(K)]
        self.metrics = {m: [[] for _ in range(K)] for m in self.family.epoch_metrics}
        dataset = datasets.of(c)
        self.convergence = dataset.convergence_measures
        self.alive_now, self.score_time, self.steps_run, self.train_time = list(range(K)), 0.0, 0, 0.0
        self.next_step, self.resumed_at, self.wall_before = 0, None, 0.0   # a resumed run's start
        self.started = time.perf_counter()

    def body(self, real: torch.Tensor, z: torch.Tensor, g_step: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One D step on (real, G(z)), then, if g_step, one G step: (D's loss, G's loss or None)."""
        net, family, hp, state = self.net, self.family, self.hp, self.state
        with net.precision(), torch.set_grad_enabled(self.d_steps == 1):   # G's graph is reused only then
            fake = net.G(z)
        with net.precision():
            l_d = family.d_loss(net.D, real, fake.detach(), hp, state, self.streams)      # D step
        net.opt_d.zero_grad()
        l_d.sum().backward()
        net.opt_d.step()
        if not g_step:
            return l_d, None
        net.D.requires_grad_(False)                        # the G step needs no gradients of D's weights
        with net.precision():                              # G step, through the new D
            if self.d_steps > 1:
                fake = net.G(self.streams.randn(self.B, self.c.nz))
            l_g = family.g_loss(net.D, fake, hp, state)
        net.opt_g.zero_grad()
        l_g.sum().backward(inputs=net.g_params)
        net.opt_g.step()
        net.D.requires_grad_(True)
        return l_d, l_g

    def record(self, step: int, l_d: torch.Tensor, l_g_now: torch.Tensor | None, g_step: bool) -> None:
        """A step's losses: each member's last ones, the family's epoch sums, and divergence (a
        non-finite loss ends the member at this step), all on the device."""
        K = self.K
        if g_step:
            self.l_g = l_g_now
            self.g_steps += 1
            for m in self.sums:
                self.sums[m] += self.state[m].detach().float().reshape(K)
        step_losses = torch.stack([l_d.detach().reshape(K), self.l_g.detach().reshape(K)], 1).float()
        if self.history is not None:
            self.history.append(step_losses)
        self.last = torch.where(self.alive[:, None], step_losses, self.last)
        ok = torch.isfinite(step_losses).all(1)
        self.steps_done = torch.where(self.alive & ~ok, step + 1, self.steps_done)
        self.alive = self.alive & ok

    def end_of_epoch(self, step: int) -> list[int]:
        """Non-finite weights end a member; the newly ended are frozen; who is alive."""
        ok = self.net.finite()
        self.steps_done = torch.where(self.alive & ~ok, step + 1, self.steps_done)
        self.alive = self.alive & ok
        now = [k for k, a in enumerate(self.alive.tolist()) if a]  # the one host sync of an epoch
        ended = sorted(set(self.alive_now) - set(now))
        if ended:
            self.net.freeze(ended)
        return now

    def score_epoch(self, step: int, on_epoch: EpochHook | None) -> None:
        """I' of every member still training, and the epoch's means of the family's measures."""
        t = timing.clock(self.device)
        c, streams = self.c, self.streams
        chunks = sample_chunks(self.net.G, c.epochScoreSamples, c.nz, streams.score, streams)
        epoch_scores = score_pack(self.scorer, chunks, self.alive_now, fid=False)
        for k, s in epoch_scores.items():
            self.per_epoch[k].append(s.Iprime)
            for name, value in s.extra.items():                    # the dataset's own measures
                self.metrics.setdefault(name, [[] for _ in range(self.K)])[k].append(value)
        for m, total in self.sums.items():
            means = (total / max(self.g_steps, 1)).tolist()
            for k in self.alive_now:
                self.metrics[m][k].append(means[k])
            total.zero_()
        self.g_steps = 0
        self.score_time += timing.clock(self.device) - t
        if on_epoch is not None:
            on_epoch((step + 1) // self.spe, {self.cfgs[k].config_id: s.Iprime for k, s in epoch_scores.items()})

    def train(self, on_epoch: EpochHook | None, stop: StopHook | None, step_clock: timing.StepClock | None,
              checkpoint: Checkpoint | None = None) -> None:
        """Every step of the run from `next_step` (0, or a resumed run's): a new data order each
        epoch, the step, its bookkeeping, and at each epoch's end the divergence check, the epoch's
        scores and, when one is due, a checkpoint."""
        # eager, or the replays of a CUDA graph of `body`
        take_step = self.net.stepper(self.body, self.streams, self.data, self.B, self.c.nz)
        loop_start, train_before, score_before = timing.clock(self.device), self.train_time, self.score_time

        def train_time() -> float:   # this run's training seconds so far, a resumed run's earlier ones too
            return train_before + timing.clock(self.device) - loop_start - (self.score_time - score_before)
        step = self.next_step - 1
        for step in range(self.next_step, self.n_steps):
            if stop is not None and stop():
                raise Stopped(f"stopped at step {step} of {self.n_steps}")
            if step_clock is not None:
                step_clock.tick(step, self.device)
            if step % self.spe == 0:
                self.streams.shuffle(len(self.data))
            g_step = (step + 1) % self.d_steps == 0
            l_d, l_g_now = take_step((step % self.spe) * self.B, g_step)
            self.record(step, l_d, l_g_now, g_step)
            if (step + 1) % self.spe == 0:                                               # end of a full epoch
                self.alive_now = self.end_of_epoch(step)
                if not self.alive_now:
                    break
                self.score_epoch(step, on_epoch)
                if checkpoint is not None and checkpoint.due() and step + 1 < self.n_steps:
                    self.train_time = train_time()
                    checkpoint.save(self.state_dict(step + 1))
        self.train_time = train_time()
        self.steps_run = step + 1
        if self.alive_now:
            self.alive_now = self.end_of_epoch(self.n_steps - 1)           # the weights at the end

    def state_dict(self, next_step: int) -> dict:
        """What the loop's step `next_step` (an epoch's first) reads, and what the run has
        recorded so far (harness.engine.resume)."""
        return {"next_step": next_step, "net": self.net.state_dict(), "streams": self.streams.state_dict(),
                "family": dict(self.state), "alive": self.alive, "steps_done": self.steps_done,
                "last": self.last, "l_g": self.l_g, "sums": self.sums, "g_steps": self.g_steps,
                "history": self.history, "per_epoch": self.per_epoch, "metrics": self.metrics,
                "alive_now": self.alive_now, "train_time": self.train_time, "score_time": self.score_time,
                "wall": self.wall_before + timing.clock(self.device) - self.started}

    def load_state_dict(self, s: dict) -> None:
        """Continue a run saved by `state_dict`: its step `next_step` is the next one taken."""
        self.net.load_state_dict(s["net"])
        self.streams.load_state_dict(s["streams"])
        for name, value in self.state.items():
            value.copy_(s["family"][name])                  # in place: a CUDA graph reads these
        for name in ("alive", "steps_done", "last", "l_g"):
            setattr(self, name, s[name].to(self.device))
        self.sums = {m: total.to(self.device) for m, total in s["sums"].items()}
        if self.history is not None and s["history"] is not None:
            self.history = [h.to(self.device) for h in s["history"]]
        for name in ("g_steps", "per_epoch", "metrics", "alive_now", "train_time", "score_time", "next_step"):
            setattr(self, name, s[name])
        self.wall_before = s["wall"]
        self.resumed_at = s["next_step"] // self.spe

    def score_final(self, samples_dir: Path | None) -> dict[int, Scores]:
        """The final scores of the members that finished, and their pictures (MNIST: an 8 x 8
        grid of samples; a mixture: a scatter), from one fixed z."""
        if not self.alive_now:
            return {}
        c, streams = self.c, self.streams
        final = score_pack(self.scorer, sample_chunks(self.net.G, c.scoreSamples, c.nz, streams.score, streams),
                           self.alive_now, fid=True)
        if samples_dir is not None:
            dataset = datasets.of(c)
            fixed_z = torch.Generator(self.device).manual_seed(PICTURE_SEED)
            index = torch.zeros_like(streams.seed_of)
            for pictures in sample_chunks(self.net.G, dataset.picture_samples, c.nz, [fixed_z], streams, index):
                for k in self.alive_now:
                    dataset.save_picture(pictures[k], Path(samples_dir) / f"{self.cfgs[k].config_id}.png")
        return final

    def curves(self, k: int) -> dict[str, list[float]]:
        """Member k's convergence measures after each scored epoch (I', or the dataset's own)."""
        return {m: self.per_epoch[k] if m == "Iprime" else self.metrics.get(m, {k: []})[k] for m in self.convergence}

    def results(self, final: dict[int, Scores], samples_dir: Path | None, wall: float) -> list[TrainResult]:
        steps_list, last_list = self.steps_done.tolist(), self.last.tolist()
        hist = torch.stack(self.history).transpose(0, 1).tolist() if self.history else [[] for _ in range(self.K)]
        out = []
        for k, cfg in enumerate(self.cfgs):
            ok = k in final
            out.append(TrainResult(
                status="ok" if ok else "diverged", IprimePerEpoch=self.per_epoch[k],
                lossD=last_list[k][0], lossG=last_list[k][1], wallTime=wall,
                stepsPerSec=self.steps_run / max(self.train_time, 1e-9), steps=int(steps_list[k]),
                gSteps=g_steps(cfg, int(steps_list[k])),
                device=str(self.device),
                samplesPath=str(Path(samples_dir) / f"{cfg.config_id}.png") if ok and samples_dir is not None else None,
                epochMetrics={m: values[k] for m, values in self.metrics.items()},
                stillImproving=still_improving_any(self.curves(k), self.convergence) if ok else None,
                resumedAtEpoch=self.resumed_at,
                lossHistory=[tuple(x) for x in hist[k][: int(steps_list[k])]],
                extraScores=final[k].extra if ok else {},
                **(final[k] if ok else Scores.missing()).core()))
        return out


def run(make_backend: Callable[[], Backend], cfgs: list[TrainConfig], data: torch.Tensor, scorer: Scorer,
        samples_dir: Path | None, device: torch.device, record_losses: bool = False,
        on_epoch: EpochHook | None = None, stop: StopHook | None = None,
        step_clock: timing.StepClock | None = None, checkpoint: Checkpoint | None = None) -> list[TrainResult]:
    """Train the members `cfgs` (one shape_key()) with the backend `make_backend()` builds;
    one TrainResult per member, in their order. `stop` is asked before every step (True raises
    `Stopped`); `step_clock` times steady-state steps; `checkpoint`: where the run saves its state
    at epoch ends, and from which it continues if that holds this run (harness.engine.resume)."""
    start = time.perf_counter()
    data = data[: cfgs[0].trainImages].to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        loop = Loop(make_backend(), cfgs, data, scorer, device, record_losses)
        saved = checkpoint.load() if checkpoint is not None else None
        if saved is not None:
            loop.load_state_dict(saved)
        loop.train(on_epoch, stop, step_clock, checkpoint)
        final = loop.score_final(samples_dir)
    return loop.results(final, samples_dir, loop.wall_before + timing.clock(device) - start)
