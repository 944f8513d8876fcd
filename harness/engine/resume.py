"""A run's state saved at epoch ends, so that a trial killed mid-run (a session's end, a
preempted node, Ctrl-C) continues from its last saved epoch instead of from step 0.

    ckpt = Checkpoint.of(folder, configs, speed, device)   # the file this run saves to
    results = train_pack(configs, ..., checkpoint=ckpt)     # loads it if it holds this run, saves
    ckpt.remove()                                           # the run is done: its rows hold it now

What is saved is everything the loop's next step reads (harness.engine.loop.Loop.state_dict):
the weights and buffers, the optimizers' state, the family's state (BEGAN's k_t), every random
stream (the seeds' data-order and z generators, the scoring ones, the dropout masks' generators),
the epoch curves and the loop's bookkeeping. A resumed run therefore takes exactly the steps the
uninterrupted run takes: on one machine their rows are equal bit for bit
(tests/engine/test_resume.py), whatever its CPU.

A file is used only by the run it was written for: the same configs in the same pack order,
the same speed variant, device type and PyTorch version (its `identity`); any other run ignores
it and overwrites it at its first save. A file cannot be written (a full disk, a worker that
does not see the folder on a cluster): the run trains on without saving, and says so once.
"""
from __future__ import annotations

import hashlib
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.atomic import write_atomic
from harness.config import TrainConfig, total_steps

SAVE_EVERY_S = 60.0   # at most one save a minute: a save costs a few ms to a second, an epoch may take less


def file_name(config_ids: list[str]) -> str:
    """A pack's file: its configs, in any order (the sweep finds the files of its packs by it)."""
    return hashlib.sha1(",".join(sorted(config_ids)).encode()).hexdigest()[:20] + ".pt"


def checkpoint_configs(path: Path) -> list[str]:
    """The config ids of the run a file holds ([] if it cannot be read: then it is of no use)."""
    return saved_progress(path)[0]


def saved_progress(path: Path) -> tuple[list[str], int]:
    """The config ids of the run a file holds, in its pack's order, and the step it goes on from
    (([], 0) if it cannot be read)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return [c["configId"] for c in saved["identity"]["configs"]], int(saved["state"]["next_step"])
    except Exception:
        return [], 0


def saved_fraction(folder: str | Path, configs: list[TrainConfig]) -> float:
    """How much of the pack `configs` its file in `folder` has trained (0 without one): what a
    resumed trial need not train again, for the sweep's projection."""
    ids, next_step = saved_progress(Path(folder) / file_name([c.config_id for c in configs]))
    if ids != [c.config_id for c in configs]:
        return 0.0
    return min(1.0, next_step / total_steps(configs[0]))


@dataclass
class Checkpoint:
    path: Path
    identity: dict                                # what a file must hold to be this run's
    every_s: float = SAVE_EVERY_S
    last_save: float = field(default_factory=time.monotonic)
    broken: bool = False                          # a save failed: no more tries

    @classmethod
    def of(cls, folder: str | Path, configs: list[TrainConfig], speed: str, device: torch.device,
           every_s: float | None = None) -> Checkpoint:
        identity = {"configs": [{**c.to_dict(), "configId": c.config_id} for c in configs], "speed": speed,
                    "device": device.type,
                    "torch": str(torch.__version__)}
        return cls(Path(folder) / file_name([c.config_id for c in configs]), identity,
                   SAVE_EVERY_S if every_s is None else every_s)

    def load(self) -> dict | None:
        """The saved state of this run, or None (no file, another run's, unreadable)."""
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except Exception as e:   # a torn or foreign file: start over, it is overwritten at the first save
            print(f"warning: checkpoint {self.path} is unreadable ({type(e).__name__}); the run starts over",
                  file=sys.stderr)
            return None
        if not isinstance(saved, dict) or saved.get("identity") != self.identity:
            return None
        return saved["state"]

    def due(self) -> bool:
        return not self.broken and time.monotonic() - self.last_save >= self.every_s

    def save(self, state: dict) -> None:
        buffer = io.BytesIO()
        torch.save({"identity": self.identity, "state": state}, buffer)
        try:
            write_atomic(self.path, buffer.getvalue())
        except OSError as e:
            self.broken = True
            print(f"warning: cannot save checkpoint {self.path} ({e.strerror or e}); the run goes on without "
                  "(killed, it would start over)", file=sys.stderr)
        self.last_save = time.monotonic()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
