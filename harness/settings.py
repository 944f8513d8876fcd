"""The settings every training run has, under the paper's names: Table 1's, and SPEC's defaults
where the paper is silent. A family's own settings (EBGAN's margin, WGAN-GP's nCritic, ...) are
declared by the family (harness/families); a run's config (harness.config.TrainConfig) is these
plus the family and its own settings.

This module imports nothing of the harness: it is the bottom of the layers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# Settings that define *what* is trained (the hashed identity of a config), as opposed to
# bookkeeping that does not change the trajectory.
TABLE1_SETTINGS = ("nLayerG", "nLayerD", "sizeG", "sizeD", "dropoutD", "optimD", "optimG", "lr")
NORMS = ("batch", "layer", "none")   # a hidden layer's normalization (harness.nets.plain builds them)


@dataclass(frozen=True)
class CommonSettings:
    # -- Table 1 -------------------------------------------------------------------------
    nLayerG: int = 2          # weight layers in G
    nLayerD: int = 2          # weight layers in D (auto-encoders: encoder layers + 1 decoder layer)
    sizeG: int = 400          # units per hidden layer of G
    sizeD: int = 128          # units per hidden layer of D (auto-encoders: the code size)
    dropoutD: bool = False    # dropout in D's hidden layers
    optimD: str = "adam"      # "adam" | "sgd"
    optimG: str = "adam"      # "adam" | "sgd"
    lr: float = 0.001
    # -- SPEC's defaults where the paper is silent -----------------------------------------
    epochs: float = 25        # passes over the training set (fractions allowed for smoke runs)
    batchSize: int = 64
    nz: int = 100             # z ~ N(0, I_nz)
    dropoutRate: float = 0.5
    adamBeta1: float = 0.5
    adamBeta2: float = 0.999
    sgdMomentum: float = 0.0
    trainImages: int = 60000  # the first N training images are used (a slice for smoke runs)
    scoreSamples: int = 10000       # samples scored at the end of training
    epochScoreSamples: int = 1000   # samples scored after every epoch
    # What the training budget counts: "dSteps", D updates (`epochs` passes of D over the data, for
    # every family alike), or "gSteps", G updates (epochs x steps per epoch of them, as WGAN-GP's
    # Algorithm 1 counts generator iterations: with nCritic D steps per G step, nCritic times the
    # D steps). Families with one D step per G step train the same either way.
    budgetCounts: str = "dSteps"
    # What the run trains on and is scored against: a registered dataset (harness/datasets/),
    # given by a grid file's top-level `dataset:` key.
    dataset: str = "mnist"
    # -- the networks: Appendix C's by default (harness/nets/plain.py); other papers' nets (the
    #    2D mixtures' GANs) as settings -------------------------------------------------------
    normG: str = "batch"      # G's hidden normalization, one of NORMS (none on G's output layer)
    normD: str = "batch"      # D's hidden normalization, one of NORMS (none on D's input and output
                              #   layers); a family that declares its own (WGAN-GP's layer norm,
                              #   BEGAN's none: Family.d_norm) trains D with that instead
    initStdG: float = 0.02    # G's Linear weights ~ N(0, initStdG), biases 0
    initStdD: float = 0.002   # D's Linear weights ~ N(0, initStdD), biases 0
    # -- which run -------------------------------------------------------------------------
    seed: int = 0


COMMON_SETTINGS = tuple(f.name for f in dataclasses.fields(CommonSettings))   # seed included
BUDGETS = ("dSteps", "gSteps")
# Settings added after results were recorded, with the value every earlier run had: a config's
# id hashes them only when they differ from it, so the ids of earlier runs still match.
ADDED_SETTINGS = {"budgetCounts": "dSteps", "dataset": "mnist",
                  "normG": "batch", "normD": "batch", "initStdG": 0.02, "initStdD": 0.002}
# The networks' settings. A grid file may leave them out: its configs then train Appendix C's
# nets (CommonSettings' defaults), as every grid written before they were settings does.
NET_SETTINGS = ("normG", "normD", "initStdG", "initStdD")
