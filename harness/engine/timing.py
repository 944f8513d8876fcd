"""Clocks that wait for the device: CUDA runs asynchronously, so a clock read without a
synchronize times the host's queueing, not the GPU's work. Every timing of the engine reads
`clock`; `StepClock` times steady-state steps within one run."""
from __future__ import annotations

import time

import torch


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    """perf_counter once the device has finished what was queued."""
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
