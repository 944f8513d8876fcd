"""GAN families as plugins: one file per family in this folder, found by name.

A family is a `Family` (below) whose module ends with `FAMILY = MyFamily()`. Everything that
varies by family lives there: its settings and their defaults and checks, its D (the model
builders, reference and packed), its D and G losses, its D steps per G step, whether it packs,
its report label(s) and colour. The grid loader, both trainers, the sweep and the report only
ask the registry:

    families.get("ebgan")        # the Family registered under a grid file's key
    cfg.spec                     # ... of a TrainConfig (harness.config)
    families.all()               # every family, in report order
    families.colors()            # {model label: colour}, the same in every figure

Families are found by importing every module of this package (names without a leading `_`),
plus the modules named in $HARNESS_FAMILIES (comma-separated module names or .py paths, read
in every process, Ray workers included), plus any passed to `load_module` / `register`.

How a family's loss is written: `d_loss` and `g_loss` get D (the reference model, inputs
[B, ...], or a pack of K, inputs [K, B, ...]) and return one loss per model: a scalar, or [K].
Every formula reduces over the LAST dimension (the batch), so one code path serves both.
`hp` holds the family's numeric settings as tensors shaped like the loss (0-dim, or [K]: one
per member); `x[..., None]` lines one up with a per-sample [.., B] tensor. `draw` is the run's
random stream (`draw.rand(B, 1)`: per member, drawn as the reference run draws it).
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import pkgutil
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn
    from harness.config import TrainConfig

ENV = "HARNESS_FAMILIES"


def fp32(formula: Callable) -> Callable:
    """Compute `formula` in float32, autocast off, whatever precision its tensors come in.

    For the formulas whose point is a small difference that bf16 (7 mantissa bits) rounds away:
    EBGAN's energy (an image minus its reconstruction), its pulling-away term (cosines squared,
    then the diagonal subtracted), WGAN-GP's gradient norm. Outside autocast, on float32 tensors,
    it changes nothing: `.float()` returns the tensor itself."""
    import torch

    @functools.wraps(formula)
    def in_fp32(*args):
        device = next(a.device.type for a in args if isinstance(a, torch.Tensor))
        with torch.autocast(device, enabled=False):
            return formula(*(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                             for a in args))
    return in_fp32


class Settings(Mapping):
    """A family's settings of one config: an immutable, hashable {name: value}."""

    def __init__(self, values: Mapping[str, Any] | None = None):
        self._values = dict(values or {})

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        return f"Settings({self._values!r})"


class Family:
    """One GAN formulation. Subclass it in `harness/families/<name>.py`; override what differs.

    The defaults below are the paper's fully connected G and a D with one score per image
    (GAN's D), batch norm, one D step per G step, packable.
    """
    name: str = ""                    # the grid file's key and the `family` column, e.g. "wgan_gp"
    title: str = ""                   # how the dry run names the family, e.g. "WGAN-GP"
    settings: dict[str, Any] = {}     # its own settings (grid names) and their defaults; types from the defaults
    shape_settings: tuple[str, ...] = ()  # settings that change the loop itself: configs that differ do not pack
    colors: dict[str, str] = {}       # model label -> colour (the first is the family's main label)
    packs: bool = True                # can harness.packed train several configs of it as one stacked model?
    d_head: str = "score"             # D's output: "score" (one number per image) or "autoencoder"
    d_norm: str = "batch"             # D's hidden normalization: "batch" or "layer" (see harness.models)
    needs_double_backward: bool = False   # its D loss differentiates D's input gradient (a penalty)
    epoch_metrics: tuple[str, ...] = ()   # names in `state` the loop averages per epoch: result column <name>PerEpoch
    rank: float = 100.0               # where its rows and bars come in reports (lower first)
    legacy_settings: dict[str, Any] = {}  # hashed into config ids only (see harness.config.TrainConfig.config_id)

    # -- settings ---------------------------------------------------------------------------
    def problems(self, s: Mapping[str, Any]) -> list[str]:
        """What is wrong with these settings, each as 'name: problem'."""
        return []

    def model(self, s: Mapping[str, Any]) -> str:
        """The report label of a config with settings `s` (EBGAN's family has two)."""
        return next(iter(self.colors))

    def d_steps(self, s: Mapping[str, Any]) -> int:
        """D steps per G step."""
        return 1

    def subgrid(self, cfg: "TrainConfig") -> str:
        """A config's optimizer subgrid (Fig. 3): optimD/optimG/lr."""
        return f"{cfg.optimD}/{cfg.optimG}/lr={cfg.lr:g}"

    # -- models ------------------------------------------------------------------------------
    def build(self, cfg: "TrainConfig") -> tuple["nn.Module", "nn.Module"]:
        """The reference G and D of one config (called right after torch.manual_seed(cfg.seed))."""
        from harness import models
        return models.build_models(cfg, head=self.d_head, norm=self.d_norm)

    def build_packed(self, configs: list["TrainConfig"], rng) -> tuple["nn.Module", "nn.Module"]:
        """The stacked G and D of K configs (members are loaded from `build` afterwards)."""
        from harness import packed
        return packed.build_stacked(configs, rng, head=self.d_head, norm=self.d_norm,
                                    grad_in_place=not self.needs_double_backward)

    # -- training ----------------------------------------------------------------------------
    def init_state(self, hp) -> dict[str, "torch.Tensor"]:
        """Tensors the loss functions carry from step to step (BEGAN's k_t), shaped like a loss.
        The losses update them in place (`copy_`): a CUDA graph of the step replays on these tensors."""
        return {}

    def d_loss(self, D, real, fake, hp, state, draw) -> "torch.Tensor":
        raise NotImplementedError

    def g_loss(self, D, fake, hp, state) -> "torch.Tensor":
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<family {self.name}>"


# --- the registry --------------------------------------------------------------------------------

_REGISTRY: dict[str, Family] = {}
_discovered = False
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register(family: Family) -> Family:
    """Add a family (replacing one of the same name); checks that its names collide with nothing."""
    from harness.config import COMMON_SETTINGS
    from harness.models import HEADS, NORMS
    if not _NAME.fullmatch(family.name or ""):
        raise ValueError(f"family name {family.name!r}: use lower-case letters, digits and '_'")
    if family.d_head not in HEADS or family.d_norm not in NORMS:
        raise ValueError(f"family {family.name}: d_head must be one of {HEADS}, d_norm one of {NORMS}")
    if not family.colors:
        raise ValueError(f"family {family.name}: give colors = {{'LABEL': '#rrggbb'}}")
    others = [f for f in _REGISTRY.values() if f.name != family.name]
    for s in family.settings:
        owner = next((f.name for f in others if s in f.settings), None)
        if s in COMMON_SETTINGS or owner:
            raise ValueError(f"family {family.name}: setting {s!r} is already "
                             f"{'a common setting' if owner is None else owner + ' setting'}; "
                             f"give it a name of its own (one column, one meaning)")
    for label in family.colors:
        owner = next((f.name for f in others if label in f.colors), None)
        if owner:
            raise ValueError(f"family {family.name}: model label {label!r} is already {owner}'s")
    for s in family.shape_settings:
        if s not in family.settings:
            raise ValueError(f"family {family.name}: shape setting {s!r} is not one of its settings")
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def load_module(name_or_path: str | Path) -> Family:
    """Import a family module (a module name, or a .py file) and register its FAMILY."""
    text = str(name_or_path)
    if text.endswith(".py"):
        path = Path(text)
        spec = importlib.util.spec_from_file_location(f"harness_family_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"{path}: cannot be imported")
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(text)
    family = getattr(module, "FAMILY", None)
    if not isinstance(family, Family):
        raise ValueError(f"{text}: has no FAMILY = <a harness.families.Family>")
    return register(family)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            load_module(f"{__name__}.{info.name}")
    for extra in filter(None, (x.strip() for x in os.environ.get(ENV, "").split(","))):
        load_module(extra)


def all() -> list[Family]:  # noqa: A001 - families.all() reads well
    _discover()
    return sorted(_REGISTRY.values(), key=lambda f: (f.rank, f.name))


def names() -> list[str]:
    return [f.name for f in all()]


def find(name: str) -> Family | None:
    _discover()
    return _REGISTRY.get(name)


def get(name: str) -> Family:
    family = find(name)
    if family is None:
        raise KeyError(f"family {name!r} is not one of {', '.join(names())}")
    return family


def colors() -> dict[str, str]:
    """{model label: colour} of every registered family, in report order."""
    return {label: color for f in all() for label, color in f.colors.items()}


def family_of_model(label: str) -> Family | None:
    return next((f for f in all() if label in f.colors), None)


def setting_owner(name: str) -> Family | None:
    """The family a (non-common) setting belongs to."""
    return next((f for f in all() if name in f.settings), None)
