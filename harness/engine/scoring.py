"""Scoring inside the loop: each member's samples from G in eval mode, classified chunk by chunk."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from harness.engine.streams import Streams
from harness.metrics import Scorer, Scores

PICTURE_SEED = 1234       # the fixed z of every run's picture (its dataset's save_picture)
GENERATE_BATCH = 2000     # samples per G forward when scoring (and at most a picture's samples)


@torch.no_grad()
def sample_chunks(G: nn.Module, n: int, nz: int, gens: list[torch.Generator], streams: Streams,
                  index: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """n samples per member in chunks [K, c, dim], G in eval mode (batch norm on its running
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
