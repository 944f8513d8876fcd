"""One training run's settings, under the paper's names (Table 1 and SPEC's defaults).

A `TrainConfig` is plain data: the grid expands a grid file into many of them, the trainer
consumes one, and every field lands as a column of the results table, so a reader can hold
a row against Table 1.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

Family = Literal["gan", "ebgan"]

# Settings that define *what* is trained (the hashed identity of a config), as opposed to
# bookkeeping that does not change the trajectory.
TABLE1_SETTINGS = ("nLayerG", "nLayerD", "sizeG", "sizeD", "dropoutD", "optimD", "optimG", "lr")


@dataclass(frozen=True)
class TrainConfig:
    # -- Table 1 -------------------------------------------------------------------------
    family: Family = "gan"
    nLayerG: int = 2          # weight layers in G
    nLayerD: int = 2          # weight layers in D (EBGAN: encoder layers + 1 decoder layer)
    sizeG: int = 400          # units per hidden layer of G
    sizeD: int = 128          # units per hidden layer of D (EBGAN: the code size)
    dropoutD: bool = False    # dropout in D's hidden layers
    optimD: str = "adam"      # "adam" | "sgd"
    optimG: str = "adam"      # "adam" | "sgd"
    lr: float = 0.001
    # -- EBGAN ---------------------------------------------------------------------------
    margin: float = 10.0      # m in L_D = D(x) + [m - D(G(z))]+
    wPT: float = 0.0          # pulling-away weight; 0 = EBGAN, 0.1 = the paper's EBGAN-PT
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
    # -- which run -------------------------------------------------------------------------
    seed: int = 0

    def __post_init__(self) -> None:
        # Normalise numbers to their declared types so that 25 and 25.0 hash alike.
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "float" and isinstance(v, int) and not isinstance(v, bool):
                object.__setattr__(self, f.name, float(v))
            elif f.type == "int" and isinstance(v, float) and v.is_integer():
                object.__setattr__(self, f.name, int(v))
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Everything impossible about this config, each as 'setting: what is wrong'."""
        out = []
        if self.family not in ("gan", "ebgan"):
            out.append(f"family: {self.family!r} is not 'gan' or 'ebgan'")
        if self.nLayerG < 2:
            out.append(f"nLayerG: {self.nLayerG} < 2 (G needs a hidden and an output layer)")
        if self.nLayerD < 2:
            out.append(f"nLayerD: {self.nLayerD} < 2 (EBGAN's D is >= 1 encoder layer + 1 decoder layer; GAN's D has a hidden and an output layer)")
        for name in ("sizeG", "sizeD", "batchSize", "nz", "trainImages", "scoreSamples", "epochScoreSamples"):
            if getattr(self, name) < 1:
                out.append(f"{name}: {getattr(self, name)} must be >= 1")
        for name in ("optimD", "optimG"):
            if getattr(self, name) not in ("adam", "sgd"):
                out.append(f"{name}: {getattr(self, name)!r} is not 'adam' or 'sgd'")
        if not self.lr > 0:
            out.append(f"lr: {self.lr} must be > 0")
        if not self.epochs > 0:
            out.append(f"epochs: {self.epochs} must be > 0")
        if not 0 <= self.dropoutRate < 1:
            out.append(f"dropoutRate: {self.dropoutRate} must be in [0, 1)")
        if self.margin < 0:
            out.append(f"margin: {self.margin} must be >= 0")
        if self.wPT < 0:
            out.append(f"wPT: {self.wPT} must be >= 0")
        if self.family == "gan" and self.wPT != 0:
            out.append("wPT: the pulling-away term is for EBGAN only; set it to 0 for GAN")
        if not 0 <= self.adamBeta1 < 1 or not 0 <= self.adamBeta2 < 1:
            out.append("adamBeta1/adamBeta2: must be in [0, 1)")
        if self.batchSize > self.trainImages:
            out.append(f"batchSize: {self.batchSize} > trainImages {self.trainImages}")
        return out

    @property
    def model(self) -> str:
        """The paper's name for what is trained: GAN, EBGAN or EBGAN-PT."""
        if self.family == "gan":
            return "GAN"
        return "EBGAN-PT" if self.wPT > 0 else "EBGAN"

    @property
    def subgrid(self) -> str:
        """The GAN optimizer subgrid of Fig. 3: optimD/optimG/lr."""
        return f"{self.optimD}/{self.optimG}/lr={self.lr:g}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def config_id(self) -> str:
        """Stable id of this run: a hash of every setting and the seed, independent of grid order."""
        return _hash(self.to_dict())

    @property
    def settings_id(self) -> str:
        """The same hash without the seed: shared by all seeds of one config."""
        return _hash({k: v for k, v in self.to_dict().items() if k != "seed"})

    def shape_key(self) -> tuple:
        """Configs with equal keys have identical tensor shapes (they can be packed)."""
        return (self.family, self.nLayerG, self.nLayerD, self.sizeG, self.sizeD, self.nz,
                self.batchSize, self.trainImages, self.epochs, self.scoreSamples,
                self.epochScoreSamples)


def _hash(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
