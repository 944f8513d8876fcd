"""The reference trainer: one config, trained plainly, start to finish.

    result = train(cfg, data, scorer, samples_dir)

Alternating D and G steps over `cfg.epochs` passes of the training set (DCGAN's loop:
one G forward per step, D on the detached fakes, then G through D). Deterministic for a seed:
the seed fixes the initialization (and the dropout masks), and a generator of its own
fixes the data order and z. Faster engines (`harness.packed`) are checked against this one.
"""
from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from harness import losses  # noqa: E402
from harness.config import TrainConfig  # noqa: E402
from harness.metrics import Scorer, Scores  # noqa: E402
from harness.models import build_models  # noqa: E402

SAMPLE_GRID_SEED = 1234   # the fixed z of every run's 8 x 8 sample grid
SCORE_SEED_OFFSET = 10_000  # scoring z comes from seed + this, apart from the training stream

# Called after each full epoch's scoring with (epoch number from 1, {configId: I'}) for the
# configs still training; the sweep reports it to Ray Tune as an intermediate result.
EpochHook = Callable[[int, dict[str, float]], None]


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
    lossD: float                      # losses of the last step
    lossG: float
    wallTime: float                   # seconds, training and scoring
    stepsPerSec: float                # training steps (one D + one G update) per second
    steps: int
    device: str
    host: str = field(default_factory=socket.gethostname)
    samplesPath: str | None = None
    error: str | None = None
    # Per-step losses, for equivalence tests; not written to the results table.
    lossHistory: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def to_row(self) -> dict:
        row = asdict(self)
        row.pop("lossHistory")
        return row


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


def d_loss(cfg: TrainConfig, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's loss on a real batch and a (detached) fake batch, for the config's family."""
    if cfg.family == "gan":
        return losses.gan_d_loss(D(real), D(fake))
    (recon_real, _), (recon_fake, _) = D(real), D(fake)
    return losses.ebgan_d_loss(losses.energy(real, recon_real), losses.energy(fake, recon_fake), cfg.margin)


def g_loss(cfg: TrainConfig, D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """G's loss on a fake batch seen through the (just updated) D."""
    if cfg.family == "gan":
        return losses.gan_g_loss(D(fake))
    recon_fake, code_fake = D(fake)
    loss = losses.ebgan_g_loss(losses.energy(fake, recon_fake))
    if cfg.wPT > 0:
        loss = loss + cfg.wPT * losses.pulling_away(code_fake)
    return loss


@torch.no_grad()
def generate(G: nn.Module, n: int, nz: int, gen: torch.Generator, device: torch.device,
             batch: int = 2000) -> torch.Tensor:
    """n samples of G in eval mode (batch norm on its running statistics)."""
    was_training = G.training
    G.eval()
    out = torch.cat([G(torch.randn(min(batch, n - i), nz, generator=gen, device=device))
                     for i in range(0, n, batch)])
    G.train(was_training)
    return out


def save_sample_grid(images: torch.Tensor, path: Path) -> None:
    """64 images [64, 1024] in [-1, 1] -> an 8 x 8 PNG (written atomically)."""
    grid = images.reshape(8, 8, 32, 32).permute(0, 2, 1, 3).reshape(256, 256).float().cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.png")
    plt.imsave(tmp, grid, cmap="gray", vmin=-1, vmax=1)
    os.replace(tmp, path)


def all_finite(*modules: nn.Module) -> bool:
    return all(torch.isfinite(p).all() for m in modules for p in m.parameters())


def train(cfg: TrainConfig, data: torch.Tensor, scorer: Scorer, samples_dir: Path | None = None,
          device: str | torch.device = "auto", record_losses: bool = False,
          on_epoch: EpochHook | None = None) -> TrainResult:
    """Train one config on `data` ([N, 1024] in [-1, 1], first cfg.trainImages rows used)."""
    start = time.perf_counter()
    device = pick_device(str(device))
    data = data[: cfg.trainImages].to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)                      # initialization and dropout masks
        G, D = (m.to(device) for m in build_models(cfg))
        opt_d = make_optimizer(cfg.optimD, D.parameters(), cfg)
        opt_g = make_optimizer(cfg.optimG, G.parameters(), cfg)
        stream = torch.Generator(device).manual_seed(cfg.seed)  # data order and z
        score_gen = torch.Generator(device).manual_seed(cfg.seed + SCORE_SEED_OFFSET)

        per_epoch, history = [], []
        n_steps, spe = total_steps(cfg), steps_per_epoch(cfg)
        status, score_time = "ok", 0.0
        loop_start = time.perf_counter()
        for step in range(n_steps):
            if step % spe == 0:
                order = torch.randperm(len(data), generator=stream, device=device)
            real = data[order[(step % spe) * cfg.batchSize:][: cfg.batchSize]]
            z = torch.randn(cfg.batchSize, cfg.nz, generator=stream, device=device)
            fake = G(z)

            l_d = d_loss(cfg, D, real, fake.detach())      # D step
            opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            opt_d.step()

            l_g = g_loss(cfg, D, fake)                       # G step, through the updated D
            opt_g.zero_grad(set_to_none=True)
            l_g.backward(inputs=list(G.parameters()))
            opt_g.step()

            loss_d, loss_g = l_d.item(), l_g.item()
            if record_losses:
                history.append((loss_d, loss_g))
            if not (math.isfinite(loss_d) and math.isfinite(loss_g)):
                status = "diverged"                          # a result, not a crash
                break
            if (step + 1) % spe == 0:                        # end of a full epoch
                if not all_finite(G, D):
                    status = "diverged"
                    break
                t = time.perf_counter()
                images = generate(G, cfg.epochScoreSamples, cfg.nz, score_gen, device)
                per_epoch.append(scorer.score(images, fid=False).Iprime)
                score_time += time.perf_counter() - t
                if on_epoch is not None:
                    on_epoch(len(per_epoch), {cfg.config_id: per_epoch[-1]})
        train_time = time.perf_counter() - loop_start - score_time
        if status == "ok" and not all_finite(G, D):
            status = "diverged"

        steps_done = step + 1
        if status == "ok":
            scores = scorer.score(generate(G, cfg.scoreSamples, cfg.nz, score_gen, device))
            samples_path = None
            if samples_dir is not None:
                fixed_z = torch.Generator(device).manual_seed(SAMPLE_GRID_SEED)
                samples_path = Path(samples_dir) / f"{cfg.config_id}.png"
                save_sample_grid(generate(G, 64, cfg.nz, fixed_z, device), samples_path)
            score_fields = scores.to_dict()
        else:
            samples_path = None
            score_fields = Scores.missing().to_dict()

    return TrainResult(
        status=status, IprimePerEpoch=per_epoch, lossD=loss_d, lossG=loss_g,
        wallTime=time.perf_counter() - start, stepsPerSec=steps_done / max(train_time, 1e-9),
        steps=steps_done, device=str(device), samplesPath=str(samples_path) if samples_path else None,
        lossHistory=history, **score_fields,
    )
