"""The training loop, once, for the reference trainer and the packed engine.

    result = train(cfg, data, scorer, samples_dir)               # one config, plain torch
    results = harness.packed.train_pack(configs, data, scorer)    # K configs as one stacked model

`run` below is the loop both use: random streams, the D and G steps, divergence, epoch
scoring and result assembly are written here once. What it trains comes from a backend:
`Reference` (this file: the family's plain nn.Modules and torch.optim, one config) or
`harness.packed.Pack` (K configs stacked). What the steps compute comes from the config's
family (`harness.families`): its models, its D and G losses, its D steps per G step.

The loop (DCGAN's, the EBGAN paper's): each step draws a real batch and z, G makes fakes, D
takes one step on the real batch and the detached fakes; every `d_steps`-th step G then takes
one step through the just-updated D: on the same fakes when d_steps is 1, on fakes of a fresh
z otherwise (WGAN-GP's Algorithm 1). A step is thus one D update; an epoch is a pass of D over
the training set (for every family, so that epochs compare), and `steps` counts D updates.

Deterministic for a seed: the seed fixes the initialization (and the dropout masks), and a
generator of its own (the "stream") fixes the data order, z and any noise a loss draws
(WGAN-GP's eps). No host sync per step: divergence (a non-finite loss) is tracked on the
device and read once per epoch, when the epoch is scored. The packed engine's members follow
their reference runs bit for bit on CPU (tests/test_packed.py).
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import torch
from PIL import Image
from torch import nn

from harness.config import TrainConfig
from harness.metrics import Scorer, Scores

SAMPLE_GRID_SEED = 1234   # the fixed z of every run's 8 x 8 sample grid
SCORE_SEED_OFFSET = 10_000  # scoring z comes from seed + this, apart from the training stream
GENERATE_BATCH = 2000     # samples per G forward when scoring

# Called after each full epoch's scoring with (epoch number from 1, {configId: I'}) for the
# configs still training; the sweep reports it to Ray Tune as an intermediate result.
EpochHook = Callable[[int, dict[str, float]], None]
# Asked before every step; True ends training there (`Stopped`): Ctrl-C, SIGTERM, a deadline.
StopHook = Callable[[], bool]


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
    steps: int
    device: str
    host: str = field(default_factory=socket.gethostname)
    samplesPath: str | None = None
    error: str | None = None
    # A family's per-epoch measures (its `epoch_metrics`, e.g. BEGAN's convergence measure M):
    # name -> one mean over each full epoch's G steps; result columns <name>PerEpoch.
    epochMetrics: dict[str, list[float]] = field(default_factory=dict)
    # Per-step losses, for equivalence tests; not written to the results table.
    lossHistory: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def to_row(self) -> dict:
        row = asdict(self)
        row.pop("lossHistory")
        row.update({f"{name}PerEpoch": values for name, values in row.pop("epochMetrics").items()})
        return row


class Stopped(Exception):
    """Training was asked to stop (`stop()` returned True): raised at the next step; nothing of
    the run is returned."""


def sync(device: torch.device) -> None:
    """Wait for the device's queued work: CUDA runs asynchronously, so a clock read without this
    times the host's queueing, not the GPU's work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    """perf_counter once the device has finished what was queued: every timing here reads this."""
    sync(device)
    return time.perf_counter()


class StepClock:
    """Steady-state seconds per step within one run: the clock is read (device synchronized) at
    the start of steps `first` and `last`, so the first steps (allocation, compilation, a CUDA
    graph's capture) fall outside what is timed."""

    def __init__(self, first: int, last: int):
        if not 0 <= first < last:
            raise ValueError(f"StepClock: need 0 <= first < last, not {first}, {last}")
        self.first, self.last = first, last
        self.times: dict[int, float] = {}

    def tick(self, step: int, device: torch.device) -> None:
        if step in (self.first, self.last):
            self.times[step] = clock(device)

    def seconds_per_step(self) -> float:
        if len(self.times) < 2:
            raise ValueError(f"StepClock: the run ended before step {self.last}")
        return (self.times[self.last] - self.times[self.first]) / (self.last - self.first)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_optimizer(kind: str, params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.adamBeta1, cfg.adamBeta2))
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.sgdMomentum)


def steps_per_epoch(cfg: TrainConfig) -> int:
    return cfg.trainImages // cfg.batchSize


def total_steps(cfg: TrainConfig) -> int:
    return max(1, round(cfg.epochs * steps_per_epoch(cfg)))


def scored_epochs(cfg: TrainConfig) -> int:
    """How many epochs end within the run: each is scored and reported (`on_epoch`)."""
    return total_steps(cfg) // steps_per_epoch(cfg)


def save_sample_grid(images: torch.Tensor, path: Path) -> None:
    """64 images [64, 1024] in [-1, 1] -> an 8 x 8 grayscale PNG, [-1, 1] mapped linearly to 0..255
    (PIL, 8-bit: a tenth of the time and a third of the bytes of an RGBA plt.imsave), atomically."""
    grid = images.reshape(8, 8, 32, 32).permute(0, 2, 1, 3).reshape(256, 256).float().cpu().numpy()
    pixels = ((grid + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.png")
    Image.fromarray(pixels).save(tmp, format="png")          # uint8, 2-D: 8-bit grayscale
    os.replace(tmp, path)


# --- what the loop draws --------------------------------------------------------------------

class Streams:
    """The random numbers of K members (K = 1 for the reference trainer), per seed.

    Each seed has a stream `torch.Generator(device).manual_seed(seed)` for the data order, z and
    any noise a loss draws, and one for scoring z (seed + SCORE_SEED_OFFSET). A pack draws from
    each seed's stream as a single run of that seed does and gathers the draws per member
    (members of one seed share them: common random numbers); packed=False returns a single
    run's draw as it is (no member dimension)."""

    def __init__(self, seeds: list[int], device: torch.device, packed: bool):
        self.device, self.packed = device, packed
        unique = sorted(set(seeds))
        self.seed_of = torch.tensor([unique.index(s) for s in seeds], device=device)
        self.train = [torch.Generator(device).manual_seed(s) for s in unique]
        self.score = [torch.Generator(device).manual_seed(s + SCORE_SEED_OFFSET) for s in unique]
        self.orders: list[torch.Tensor] = []

    def gather(self, draws: list[torch.Tensor], index: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack(draws)[self.seed_of if index is None else index] if self.packed else draws[0]

    def randn(self, *shape: int) -> torch.Tensor:
        return self.gather([torch.randn(*shape, generator=g, device=self.device) for g in self.train])

    def rand(self, *shape: int) -> torch.Tensor:
        return self.gather([torch.rand(*shape, generator=g, device=self.device) for g in self.train])

    def shuffle(self, n: int) -> None:
        """A new epoch's data order."""
        self.orders = [torch.randperm(n, generator=g, device=self.device) for g in self.train]

    def batch(self, data: torch.Tensor, start: int, size: int) -> torch.Tensor:
        if not self.packed:
            return data[self.orders[0][start:start + size]]
        return data[torch.stack([o[start:start + size] for o in self.orders])[self.seed_of]]


@torch.no_grad()
def sample_chunks(G: nn.Module, n: int, nz: int, gens: list[torch.Generator], streams: Streams,
                  index: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """n samples per member in chunks [K, c, 1024], G in eval mode (batch norm on its running
    statistics); z drawn from `gens` (one per seed, gathered by `index`, default the seeds)."""
    was_training = G.training
    G.eval()
    try:
        for i in range(0, n, GENERATE_BATCH):
            c = min(GENERATE_BATCH, n - i)
            images = G(streams.gather([torch.randn(c, nz, generator=g, device=streams.device) for g in gens], index))
            yield images if streams.packed else images.unsqueeze(0)
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


class Hyper:
    """A family's numeric settings of the members as tensors shaped like a loss: 0-dim for the
    reference trainer, [K] for a pack (`hp.margin`); `hp.any(name)` asks the host values."""

    def __init__(self, cfgs: list[TrainConfig], device: torch.device, packed: bool):
        self.host = {name: [cfg.settings[name] for cfg in cfgs] for name in cfgs[0].spec.settings}
        for name, values in self.host.items():
            if all(isinstance(v, (int, float)) for v in values):
                t = torch.tensor([float(v) for v in values], device=device)
                setattr(self, name, t if packed else t[0])

    def any(self, name: str) -> bool:
        return any(self.host[name])


# --- the two backends -------------------------------------------------------------------------

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
    def stepper(self, body, streams: "Streams", data: torch.Tensor, B: int, nz: int
                ) -> Callable[[int, bool], tuple]: ...  # take_step(batch start, g_step) -> body's losses


class Reference:
    """One config, plainly: the family's nn.Modules and torch.optim (the reference runs)."""
    packed = False

    def __init__(self, cfg: TrainConfig, device: torch.device):
        torch.manual_seed(cfg.seed)                      # initialization and dropout masks
        self.G, self.D = (m.to(device) for m in cfg.spec.build(cfg))
        self.opt_d = make_optimizer(cfg.optimD, self.D.parameters(), cfg)
        self.opt_g = make_optimizer(cfg.optimG, self.G.parameters(), cfg)
        self.g_params = list(self.G.parameters())

    def precision(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def finite(self) -> torch.Tensor:
        params = [*self.G.parameters(), *self.D.parameters()]
        return torch.stack([torch.isfinite(p).all() for p in params]).all().reshape(1)

    def freeze(self, members: list[int]) -> None:
        pass  # its one member ended: so does the run

    def stepper(self, body, streams: "Streams", data: torch.Tensor, B: int, nz: int):
        return eager_steps(body, streams, data, B, nz)


def eager_steps(body, streams: Streams, data: torch.Tensor, B: int, nz: int) -> Callable[[int, bool], tuple]:
    """The loop's steps as plain calls: the batch at `start` of this epoch's order, z, `body`."""
    def take_step(start: int, g_step: bool) -> tuple:
        return body(streams.batch(data, start, B), streams.randn(B, nz), g_step)
    return take_step


def train(cfg: TrainConfig, data: torch.Tensor, scorer: Scorer, samples_dir: Path | None = None,
          device: str | torch.device = "auto", record_losses: bool = False,
          on_epoch: EpochHook | None = None, stop: StopHook | None = None,
          step_clock: StepClock | None = None) -> TrainResult:
    """Train one config on `data` ([N, 1024] in [-1, 1], first cfg.trainImages rows used)."""
    device = pick_device(str(device))
    return run(lambda: Reference(cfg, device), [cfg], data, scorer, samples_dir, device,
               record_losses, on_epoch, stop, step_clock)[0]


# --- the loop ----------------------------------------------------------------------------------

def run(make_backend: Callable[[], Backend], cfgs: list[TrainConfig], data: torch.Tensor, scorer: Scorer,
        samples_dir: Path | None, device: torch.device, record_losses: bool = False,
        on_epoch: EpochHook | None = None, stop: StopHook | None = None,
        step_clock: StepClock | None = None) -> list[TrainResult]:
    """Train the members `cfgs` (one shape_key()) with the backend `make_backend()` builds;
    one TrainResult per member, in their order. `stop` is asked before every step (True raises
    `Stopped`); `step_clock` times steady-state steps."""
    start = time.perf_counter()
    c, K = cfgs[0], len(cfgs)
    family = c.spec
    data = data[: c.trainImages].to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        net = make_backend()
        streams = Streams([cfg.seed for cfg in cfgs], device, net.packed)
        hp = Hyper(cfgs, device, net.packed)
        state = family.init_state(hp)
        n_steps, spe, B, d_steps = total_steps(c), steps_per_epoch(c), c.batchSize, family.d_steps(c.settings)

        alive = torch.ones(K, dtype=torch.bool, device=device)  # on the device: no host sync per step
        steps_done = torch.full((K,), n_steps, device=device)
        last = torch.zeros(K, 2, device=device)                  # (lossD, lossG) of each member's last step
        l_g = torch.zeros(K, device=device)                      # G's loss at its latest step
        sums = {m: torch.zeros(K, device=device) for m in family.epoch_metrics}
        g_steps = 0                                              # G steps in this epoch
        history: list[torch.Tensor] = []
        per_epoch: list[list[float]] = [[] for _ in range(K)]
        metrics: dict[str, list[list[float]]] = {m: [[] for _ in range(K)] for m in family.epoch_metrics}
        alive_now, score_time = list(range(K)), 0.0

        def end_of_epoch(step: int) -> list[int]:
            """Non-finite weights end a member; the newly ended are frozen; who is alive."""
            nonlocal alive, steps_done
            ok = net.finite()
            steps_done = torch.where(alive & ~ok, step + 1, steps_done)
            alive = alive & ok
            now = [k for k, a in enumerate(alive.tolist()) if a]  # the one host sync of an epoch
            ended = sorted(set(alive_now) - set(now))
            if ended:
                net.freeze(ended)
            return now

        def body(real: torch.Tensor, z: torch.Tensor, g_step: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
            """One D step on (real, G(z)), then, if g_step, one G step: (D's loss, G's loss or None)."""
            with net.precision(), torch.set_grad_enabled(d_steps == 1):   # G's graph is reused only then
                fake = net.G(z)
            with net.precision():
                l_d = family.d_loss(net.D, real, fake.detach(), hp, state, streams)      # D step
            net.opt_d.zero_grad()
            l_d.sum().backward()
            net.opt_d.step()
            if not g_step:
                return l_d, None
            net.D.requires_grad_(False)                        # the G step needs no gradients of D's weights
            with net.precision():                              # G step, through the new D
                if d_steps > 1:
                    fake = net.G(streams.randn(B, c.nz))
                l_g = family.g_loss(net.D, fake, hp, state)
            net.opt_g.zero_grad()
            l_g.sum().backward(inputs=net.g_params)
            net.opt_g.step()
            net.D.requires_grad_(True)
            return l_d, l_g

        take_step = net.stepper(body, streams, data, B, c.nz)  # eager, or replays of a CUDA graph of `body`
        loop_start = clock(device)
        for step in range(n_steps):
            if stop is not None and stop():
                raise Stopped(f"stopped at step {step} of {n_steps}")
            if step_clock is not None:
                step_clock.tick(step, device)
            if step % spe == 0:
                streams.shuffle(len(data))
            g_step = (step + 1) % d_steps == 0
            l_d, l_g_now = take_step((step % spe) * B, g_step)
            if g_step:
                l_g = l_g_now
                g_steps += 1
                for m in sums:
                    sums[m] += state[m].detach().float().reshape(K)

            step_losses = torch.stack([l_d.detach().reshape(K), l_g.detach().reshape(K)], 1).float()
            if record_losses:
                history.append(step_losses)
            last = torch.where(alive[:, None], step_losses, last)
            ok = torch.isfinite(step_losses).all(1)
            steps_done = torch.where(alive & ~ok, step + 1, steps_done)
            alive = alive & ok
            if (step + 1) % spe == 0:                                                     # end of a full epoch
                alive_now = end_of_epoch(step)
                if not alive_now:
                    break
                t = clock(device)
                chunks = sample_chunks(net.G, c.epochScoreSamples, c.nz, streams.score, streams)
                epoch_scores = score_pack(scorer, chunks, alive_now, fid=False)
                for k, s in epoch_scores.items():
                    per_epoch[k].append(s.Iprime)
                for m, total in sums.items():
                    means = (total / max(g_steps, 1)).tolist()
                    for k in alive_now:
                        metrics[m][k].append(means[k])
                    total.zero_()
                g_steps = 0
                score_time += clock(device) - t
                if on_epoch is not None:
                    on_epoch((step + 1) // spe, {cfgs[k].config_id: s.Iprime for k, s in epoch_scores.items()})
        train_time = clock(device) - loop_start - score_time
        steps_run = step + 1
        if alive_now:
            alive_now = end_of_epoch(n_steps - 1)           # the weights at the end

        final: dict[int, Scores] = {}
        if alive_now:
            final = score_pack(scorer, sample_chunks(net.G, c.scoreSamples, c.nz, streams.score, streams),
                               alive_now, fid=True)
            if samples_dir is not None:
                fixed_z = torch.Generator(device).manual_seed(SAMPLE_GRID_SEED)
                for grids in sample_chunks(net.G, 64, c.nz, [fixed_z], streams, torch.zeros_like(streams.seed_of)):
                    for k in alive_now:
                        save_sample_grid(grids[k], Path(samples_dir) / f"{cfgs[k].config_id}.png")

    steps_list, last_list = steps_done.tolist(), last.tolist()
    hist = torch.stack(history).transpose(0, 1).tolist() if history else [[] for _ in range(K)]
    wall = clock(device) - start
    results = []
    for k, cfg in enumerate(cfgs):
        ok = k in final
        results.append(TrainResult(
            status="ok" if ok else "diverged", IprimePerEpoch=per_epoch[k],
            lossD=last_list[k][0], lossG=last_list[k][1], wallTime=wall,
            stepsPerSec=steps_run / max(train_time, 1e-9), steps=int(steps_list[k]), device=str(device),
            samplesPath=str(Path(samples_dir) / f"{cfg.config_id}.png") if ok and samples_dir is not None else None,
            epochMetrics={m: values[k] for m, values in metrics.items()},
            lossHistory=[tuple(x) for x in hist[k][: int(steps_list[k])]],
            **(final[k] if ok else Scores.missing()).to_dict()))
    return results
