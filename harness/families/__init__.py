"""GAN families as plugins: one file per family in this folder, found by name.

A family is a `Family` (harness/families/base.py) whose module ends with `FAMILY = MyFamily()`.
Everything that varies by family lives there: its settings and their defaults and checks, the
shape of its D (a score head or an auto-encoder; a norm of its own where it needs one, else the
config's normD: harness.nets builds it), its D and G losses, its D steps per G step, whether it
packs, its report label(s) and colour.
The grid loader, both trainers, the sweep and the report only ask the registry:

    families.get("ebgan")        # the Family registered under a grid file's key
    cfg.spec                     # ... of a TrainConfig (harness.config)
    families.all()               # every family, in report order
    families.colors()            # {model label: colour}, the same in every figure

Families are found by importing every module of this package (names without a leading `_`,
but `base`),
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

from harness.families.base import HEADS, Family, Settings, fp32
from harness.plugins import Registry
from harness.settings import COMMON_SETTINGS, NORMS

__all__ = ["Family", "Settings", "fp32", "register", "unregister", "load_module", "all", "names", "find", "get",
           "colors", "family_of_model", "setting_owner", "norm_override"]
ENV = "HARNESS_FAMILIES"


# --- the registry --------------------------------------------------------------------------------

def _check(family: Family, others: list[Family]) -> None:
    """A family's names must collide with nothing: one column, one meaning; one label, one family."""
    if family.d_head not in HEADS or (family.d_norm is not None and family.d_norm not in NORMS):
        raise ValueError(f"family {family.name}: d_head must be one of {HEADS}, d_norm None or one of {NORMS}")
    if not family.colors:
        raise ValueError(f"family {family.name}: give colors = {{'LABEL': '#rrggbb'}}")
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


_REGISTRY = Registry("family", __name__, "FAMILY", Family, ENV, _check)
register, unregister = _REGISTRY.register, _REGISTRY.unregister
load_module, find = _REGISTRY.load_module, _REGISTRY.find


def all() -> list[Family]:  # noqa: A001 - families.all() reads well
    return sorted(_REGISTRY.all(), key=lambda f: (f.rank, f.name))


def names() -> list[str]:
    return [f.name for f in all()]


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


_NORM_WORDS = {"batch": "its own batch norm", "layer": "its own layer norm", "none": "no normalization"}


def norm_override(family_name: str, normD: str) -> str | None:
    """A sentence for the report when the family trains D with a normalization of its own
    (`Family.d_norm`) other than a config's `normD`, e.g. "WGAN-GP trains D with its own layer
    norm (normD 'batch' of the grid does not apply)"; None when normD is what D is trained with.
    Takes the two names, not a config: harness.config sits above the families."""
    family = get(family_name)
    if family.d_norm is None or family.d_norm == normD:
        return None
    return (f"{family.title or family.name} trains D with {_NORM_WORDS[family.d_norm]} "
            f"(normD {normD!r} of the grid does not apply)")
