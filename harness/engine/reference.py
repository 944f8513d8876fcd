"""The reference trainer: one config, plainly, with the family's models from harness.nets and
torch.optim. Its runs are what the packed engine's members are held against."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from harness import nets
from harness.config import TrainConfig
from harness.engine.loop import EpochHook, StopHook, TrainResult, eager_steps, run
from harness.engine.resume import Checkpoint
from harness.engine.streams import Streams
from harness.engine.timing import StepClock, pick_device
from harness.metrics import Scorer


def make_optimizer(kind: str, params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.adamBeta1, cfg.adamBeta2))
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.sgdMomentum)


class Reference:
    """One config's G, D and optimizers (harness.engine.loop.Backend)."""
    packed = False

    def __init__(self, cfg: TrainConfig, device: torch.device):
        torch.manual_seed(cfg.seed)                      # initialization and dropout masks
        self.device = device
        self.G, self.D = (m.to(device) for m in nets.build(cfg))
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

    def state_dict(self) -> dict:
        # the global RNG draws its dropout masks (on a GPU, the device's)
        rng = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else torch.get_rng_state()
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_d": self.opt_d.state_dict(),
                "opt_g": self.opt_g.state_dict(), "rng": rng}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"], self.device)
        else:
            torch.set_rng_state(state["rng"])

    def stepper(self, body, streams: Streams, data: torch.Tensor, B: int, nz: int):
        return eager_steps(body, streams, data, B, nz)


def train(cfg: TrainConfig, data: torch.Tensor, scorer: Scorer, samples_dir: Path | None = None,
          device: str | torch.device = "auto", record_losses: bool = False,
          on_epoch: EpochHook | None = None, stop: StopHook | None = None,
          step_clock: StepClock | None = None, checkpoint: Checkpoint | None = None) -> TrainResult:
    """Train one config on `data` ([N, 1024] in [-1, 1], first cfg.trainImages rows used).

    on_epoch: called after each full epoch's scoring; stop: asked before every step (True ends
    the run with harness.engine.loop.Stopped); step_clock: times steady-state steps; checkpoint:
    where the run saves its state at epoch ends and continues from (harness.engine.resume)."""
    device = pick_device(str(device))
    return run(lambda: Reference(cfg, device), [cfg], data, scorer, samples_dir, device,
               record_losses, on_epoch, stop, step_clock, checkpoint)[0]
