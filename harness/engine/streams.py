"""What the loop draws, and a family's settings shaped for its losses.

Deterministic for a seed: the seed fixes the initialization (and the dropout masks), and a
generator of its own (the "stream") fixes the data order, z and any noise a loss draws
(WGAN-GP's eps). Members of a pack that share a seed share its draws (common random numbers);
a pack may mix seeds, each seed's stream drawn as a single run of that seed draws it.
"""
from __future__ import annotations

import torch

from harness.config import TrainConfig

SCORE_SEED_OFFSET = 10_000  # scoring z comes from seed + this, apart from the training stream


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

    def state_dict(self) -> dict:
        """The generators' states, at an epoch's end (the next epoch draws a new order)."""
        return {"train": [g.get_state() for g in self.train], "score": [g.get_state() for g in self.score]}

    def load_state_dict(self, state: dict) -> None:
        for g, saved in zip(self.train + self.score, state["train"] + state["score"]):
            g.set_state(saved)

    def batch(self, data: torch.Tensor, start: int, size: int) -> torch.Tensor:
        if not self.packed:
            return data[self.orders[0][start:start + size]]
        return data[torch.stack([o[start:start + size] for o in self.orders])[self.seed_of]]


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
