"""The optimizers of a packed network: Adam or SGD per member, each with its own settings, as
torch.optim's own functional Adam / SGD on each block of members' rows."""
from __future__ import annotations

from itertools import groupby

import torch
from torch import nn
from torch.optim.adam import adam as functional_adam
from torch.optim.sgd import sgd as functional_sgd

from harness.config import TrainConfig
from harness.nets.stacked import StackedLinear


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
    them in tests/engine/test_pack.py). Bit-equality matters: in EBGAN's first steps Adam's update
    is about lr * sign(g) for gradients that are nearly 0, so a 1-ulp difference turns into whole
    steps within a few steps (`python -m harness.gpucheck OUT --drift` shows it), and only
    identical arithmetic keeps a member on its reference trajectory. The step counts are CPU
    tensors, as torch.optim.Adam keeps them when not capturable: no device sync.
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
            if kinds[start] == "adam":
                steps = [torch.tensor(0.0, device=device if capturable else "cpu") for _ in params]
                m, v = ([torch.zeros_like(p[start:end]) for p in params] for _ in range(2))
                self.adam.append((start, end, cfg, m, v, steps))
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

    def state_dict(self) -> dict:
        return {"adam": [(m, v, steps) for *_, m, v, steps in self.adam],
                "sgd": [buffers for *_, buffers in self.sgd], "frozen": self.frozen, "keep": self.keep}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """In place where a CUDA graph may read the tensors (moments, step counts, the keep mask)."""
        for (*_, m, v, steps), saved in zip(self.adam, state["adam"]):
            for mine, theirs in zip(m + v + steps, [x for xs in saved for x in xs]):
                mine.copy_(theirs)
        device = self.params[0].device
        for (*_, buffers), saved in zip(self.sgd, state["sgd"]):
            buffers[:] = [None if b is None else b.to(device) for b in saved]
        self.frozen = None if state["frozen"] is None else state["frozen"].to(device)
        self.keep.copy_(state["keep"])

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
