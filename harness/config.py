"""One training run's settings, under the paper's names (Table 1 and SPEC's defaults).

A `TrainConfig` is plain data: the grid expands a grid file into many of them, the trainer
consumes one, and every setting lands as a column of the results table, so a reader can hold
a row against Table 1.

Settings are of two kinds:
- common ones (harness.settings), fields of TrainConfig: Table 1's (nLayerG ... lr), SPEC's
  defaults where the paper is silent (epochs, batchSize, ...) and the networks' (normG, normD,
  initStdG, initStdD: Appendix C's by default), the same for every family;
- a family's own ones (EBGAN's margin and wPT, WGAN-GP's lambdaGP and nCritic, ...), declared
  with their defaults by the family (`harness.families`) and held in `cfg.settings`. They read
  as attributes too (`cfg.margin`), and are columns only in their family's rows: in the
  results table a setting that does not apply to a row is null.

    TrainConfig(family="ebgan", nLayerG=5, margin=10, wPT=0.1)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness import families
from harness.families import Family, Settings
from harness.settings import ADDED_SETTINGS, BUDGETS, COMMON_SETTINGS, NORMS, TABLE1_SETTINGS, CommonSettings

__all__ = ["TrainConfig", "ConfigError", "COMMON_SETTINGS", "TABLE1_SETTINGS", "setting_names",
           "steps_per_epoch", "total_steps", "scored_epochs", "g_steps"]


class ConfigError(ValueError):
    """Everything impossible about a config, each problem 'setting: what is wrong' (`problems`)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, init=False)
class TrainConfig(CommonSettings):
    family: str = "gan"       # a registered family (harness/families/<family>.py)
    # -- the family's own settings (its defaults filled in) ----------------------------------
    settings: Settings = Settings()

    def __init__(self, family: str = "gan", settings: Mapping[str, Any] | None = None, **values: Any):
        """Common settings by name; any other keyword is a setting of the family."""
        own = {k: values.pop(k) for k in list(values) if k not in COMMON_SETTINGS}
        for f in _FIELDS:
            object.__setattr__(self, f.name, _typed(values.get(f.name, f.default), f.type))
        object.__setattr__(self, "family", family)
        spec = families.find(family)
        defaults = spec.settings if spec else {}
        given = {**(settings or {}), **own}
        merged = {**defaults, **given}
        object.__setattr__(self, "settings", Settings(
            {k: _typed(v, type(defaults[k]).__name__) if k in defaults else v for k, v in merged.items()}))
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def __getattr__(self, name: str) -> Any:
        """A family setting as an attribute: cfg.margin (only called when no field matches)."""
        if name.startswith("_") or name == "settings":
            raise AttributeError(name)
        try:
            return self.settings[name]
        except KeyError:
            raise AttributeError(f"{self.family} config has no setting {name!r}") from None

    def problems(self) -> list[str]:
        """Everything impossible about this config, each as 'setting: what is wrong'."""
        out = self._common_problems()
        spec = families.find(self.family)
        if spec is None:
            return [f"family: {self.family!r} is not one of {', '.join(families.names())}", *out]
        for name in self.settings:
            if name not in spec.settings:
                owner = families.setting_owner(name)
                whose = f"it is {owner.name}'s" if owner else "no family has it"
                out.append(f"{name}: not a setting of {spec.name} ({whose}); remove it")
        return out or spec.problems(self.settings)

    def _common_problems(self) -> list[str]:
        sizes = ("sizeG", "sizeD", "batchSize", "nz", "trainImages", "scoreSamples", "epochScoreSamples")
        checks = [
            (self.nLayerG < 2, f"nLayerG: {self.nLayerG} < 2 (G needs a hidden and an output layer)"),
            (self.nLayerD < 2, f"nLayerD: {self.nLayerD} < 2 (EBGAN's D is >= 1 encoder layer + 1 decoder layer; "
                               f"GAN's D has a hidden and an output layer)"),
            *((getattr(self, n) < 1, f"{n}: {getattr(self, n)} must be >= 1") for n in sizes),
            *((getattr(self, n) not in ("adam", "sgd"), f"{n}: {getattr(self, n)!r} is not 'adam' or 'sgd'")
              for n in ("optimD", "optimG")),
            (not self.lr > 0, f"lr: {self.lr} must be > 0"),
            (not self.epochs > 0, f"epochs: {self.epochs} must be > 0"),
            (not 0 <= self.dropoutRate < 1, f"dropoutRate: {self.dropoutRate} must be in [0, 1)"),
            (not (0 <= self.adamBeta1 < 1 and 0 <= self.adamBeta2 < 1), "adamBeta1/adamBeta2: must be in [0, 1)"),
            (self.batchSize > self.trainImages, f"batchSize: {self.batchSize} > trainImages {self.trainImages}"),
            (self.budgetCounts not in BUDGETS,
             f"budgetCounts: {self.budgetCounts!r} is not one of {', '.join(BUDGETS)}"),
            *((getattr(self, n) not in NORMS, f"{n}: {getattr(self, n)!r} is not one of {', '.join(NORMS)}")
              for n in ("normG", "normD")),
            *((not _positive(getattr(self, n)), f"{n}: {getattr(self, n)!r} must be a finite number > 0")
              for n in ("initStdG", "initStdD")),
        ]
        return [message for bad, message in checks if bad]

    @property
    def spec(self) -> Family:
        """The family's plugin (harness/families/<family>.py)."""
        return families.get(self.family)

    @property
    def norm_d(self) -> str:
        """D's hidden normalization as trained: the family's own where it declares one
        (`Family.d_norm`: WGAN-GP's layer norm, BEGAN's none), else the config's normD.
        (G's is normG; `families.norm_override` says when the family's norm replaced normD.)"""
        return self.spec.d_norm if self.spec.d_norm is not None else self.normD

    @property
    def model(self) -> str:
        """The report label of what is trained: GAN, EBGAN, EBGAN-PT, LSGAN, ..."""
        return self.spec.model(self.settings)

    @property
    def subgrid(self) -> str:
        """The optimizer subgrid of Fig. 3: optimD/optimG/lr (a family may add its own settings)."""
        return self.spec.subgrid(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name: family, Table 1's, the family's own, SPEC's defaults, seed."""
        d = {"family": self.family}
        d.update({k: getattr(self, k) for k in TABLE1_SETTINGS})
        d.update(self.settings)
        d.update({f.name: getattr(self, f.name) for f in _FIELDS if f.name not in d})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """The inverse of to_dict; keys of other families' settings (null in a results row) are ignored."""
        family = d.get("family", "gan")
        spec = families.get(family)
        keep = [*COMMON_SETTINGS, *spec.settings]
        return cls(family=family, **{k: d[k] for k in keep if k in d})

    @property
    def config_id(self) -> str:
        """Stable id of this run: a hash of every setting and the seed, independent of grid order.

        It also hashes the family's `legacy_settings`: before families were plugins every config
        carried EBGAN's margin (10) and wPT (0), GAN's too, and results computed then are keyed
        by those ids; GAN declares them there so that its ids did not change."""
        return _hash(self._identity())

    @property
    def settings_id(self) -> str:
        """The same hash without the seed: shared by all seeds of one config."""
        return _hash({k: v for k, v in self._identity().items() if k != "seed"})

    def _identity(self) -> dict[str, Any]:
        d = {**self.spec.legacy_settings, **self.to_dict()}
        return {k: v for k, v in d.items() if k not in ADDED_SETTINGS or v != ADDED_SETTINGS[k]}

    def shape_key(self) -> tuple:
        """Configs with equal keys have identical tensor shapes and loops (they can be packed).

        The norms as trained (normG, `norm_d`) are in it: a pack's layers are one kind for all
        its members. The init stds are not: each member is initialized as its reference run is
        (harness.engine.pack.build_pack), so members of different initStdG/initStdD pack."""
        return (self.family, self.nLayerG, self.nLayerD, self.sizeG, self.sizeD, self.nz,
                self.batchSize, self.trainImages, self.epochs, self.scoreSamples,
                self.epochScoreSamples, self.budgetCounts, self.dataset, self.normG, self.norm_d,
                *(self.settings[s] for s in self.spec.shape_settings))


_FIELDS = [f for f in dataclasses.fields(TrainConfig) if f.name in COMMON_SETTINGS]


# --- the schedule of a run ------------------------------------------------------------------

def steps_per_epoch(cfg: TrainConfig) -> int:
    """D steps in one pass over the training set."""
    return cfg.trainImages // cfg.batchSize


def total_steps(cfg: TrainConfig) -> int:
    """D steps of the run: `epochs` passes of D over the data, or, when the budget counts G
    updates (budgetCounts "gSteps"), as many D steps as that many G updates take."""
    per_g = cfg.spec.d_steps(cfg.settings) if cfg.budgetCounts == "gSteps" else 1
    return max(1, round(cfg.epochs * steps_per_epoch(cfg))) * per_g


def g_steps(cfg: TrainConfig, d_steps_done: int) -> int:
    """G updates in the first `d_steps_done` D steps: one every `d_steps` of them."""
    return d_steps_done // cfg.spec.d_steps(cfg.settings)


def scored_epochs(cfg: TrainConfig) -> int:
    """How many epochs end within the run: each is scored and reported (the loop's `on_epoch`)."""
    return total_steps(cfg) // steps_per_epoch(cfg)


def setting_names() -> tuple[str, ...]:
    """A config's settings as results-table columns: the common ones but the seed, then every
    registered family's own (null in the rows of families they do not apply to)."""
    return (*(c for c in COMMON_SETTINGS if c != "seed"), *(name for f in families.all() for name in f.settings))


def _typed(v: Any, type_name: str) -> Any:
    """Numbers normalised to their declared types, so that 25 and 25.0 hash alike."""
    if type_name == "float" and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if type_name == "int" and isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _hash(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
