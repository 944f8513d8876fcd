"""What a GAN family is: its declarations (settings, D's shape, steps, labels) and its losses.

A family is a `Family` subclass in `harness/families/<name>.py` (see harness/families/__init__.py
for the registry and how a loss is written). It builds no models: harness.nets builds G and D
from what the family declares (`d_head`, `d_norm`, `needs_double_backward`), so a family file is
its settings and its formulas, nothing else.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

HEADS = ("score", "autoencoder")   # D's output: one number per image, or (reconstruction, code)


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
    (GAN's D), normalized as the config says (normD: batch norm by default), one D step per G
    step, packable.
    """
    name: str = ""                    # the grid file's key and the `family` column, e.g. "wgan_gp"
    title: str = ""                   # how the dry run names the family, e.g. "WGAN-GP"
    settings: dict[str, Any] = {}     # its own settings (grid names) and their defaults; types from the defaults
    shape_settings: tuple[str, ...] = ()  # settings that change the loop itself: configs that differ do not pack
    colors: dict[str, str] = {}       # model label -> colour (the first is the family's main label)
    packs: bool = True                # can harness.engine.pack train several configs of it as one stacked model?
    d_head: str = "score"             # D's output: one of HEADS (harness.nets builds it)
    d_norm: str | None = None         # D's hidden normalization where the family requires one (one of
                                      #   harness.settings.NORMS: WGAN-GP's layer, BEGAN's none); None: normD's
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

    def subgrid(self, s: Mapping[str, Any]) -> str:
        """A config's optimizer subgrid (Fig. 3), optimD/optimG/lr, from its settings by name (the
        common ones and the family's own: `TrainConfig.to_dict()`)."""
        return f"{s['optimD']}/{s['optimG']}/lr={s['lr']:g}"

    # -- training ----------------------------------------------------------------------------
    def init_state(self, hp) -> dict[str, torch.Tensor]:
        """Tensors the loss functions carry from step to step (BEGAN's k_t), shaped like a loss.
        The losses update them in place (`copy_`): a CUDA graph of the step replays on these tensors."""
        return {}

    def d_loss(self, D, real, fake, hp, state, draw) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, D, fake, hp, state) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<family {self.name}>"


