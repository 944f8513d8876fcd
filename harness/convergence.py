"""Has a run stopped improving? A verdict on a grid means something only for runs that converged:
a config still climbing at the end of its budget is judged on where it happened to stop.

`still_improving(curve)` reads one measure after each epoch and asks whether, over the last
quarter of its scored epochs, it rose by more than the scatter of those epochs' scores would
make by chance. A run is still improving while any of its dataset's `convergence_measures` is
(`still_improving_any`): I' on MNIST; on a mixture the modes captured or the high-quality share,
since a generator closing in on its first modes raises the share long before a mode counts.

The rise is the least-squares line's over that quarter (slope x its span of epochs); the
scatter is the residuals' about that line, which contain each epoch's sampling spread (its
scores come from a few hundred or thousand samples) and the training's own wobble. A rise
counts when it exceeds twice its standard error (a one-sided test at about 2.5% for normal
residuals): a flat noisy curve is not improving, a curve still climbing through its noise is.
It must also exceed the measure's resolution (0.01 nats of I', half a mode, half a point of the
high-quality share), so that a collapsed generator creeping from 1e-9 to 1e-7 with no scatter
at all is not called improving.

The quarter takes at least MIN_POINTS epochs, so that the residuals have 2 degrees of freedom
(a flat curve then passes Z by chance about 9% of the time; at 25 epochs, 7 points, about 5%;
with two measures, about twice that). With fewer than MIN_EPOCHS scored epochs nothing can be
told: None (the report says so).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

MIN_EPOCHS = 8          # scored epochs a verdict needs (the last quarter's line needs MIN_POINTS of them)
MIN_POINTS = 4          # epochs in the fitted quarter, at least
Z = 2.0                 # the rise must exceed Z standard errors of itself
WARN_SHARE = 0.20       # above this share of a family still improving, its budget is short for the grid


def still_improving(curve: Sequence[float], resolution: float = 0.0) -> bool | None:
    """Did the last quarter of `curve` (one score per epoch) rise by more than Z standard errors
    of that rise, and by more than `resolution` (the smallest change of the measure that means
    anything: a generator collapsed to one class whose I' climbs from 1e-9 to 1e-7 has a tiny
    scatter, but is not improving)? None with fewer than MIN_EPOCHS finite scores."""
    y = np.asarray([v for v in curve if v is not None], dtype=float)
    if len(y) < MIN_EPOCHS or not np.isfinite(y).all():
        return None
    q = y[-max(MIN_POINTS, math.ceil(len(y) / 4)):]
    x = np.arange(len(q), dtype=float)
    x -= x.mean()
    slope = float((x * (q - q.mean())).sum() / (x * x).sum())
    rise = slope * (len(q) - 1)
    if rise <= max(resolution, 0.0):
        return False
    resid = q - q.mean() - slope * x
    se_slope = math.sqrt(float((resid ** 2).sum()) / (len(q) - 2) / float((x * x).sum()))
    return bool(rise > Z * se_slope * (len(q) - 1))


def still_improving_any(curves: Mapping[str, Sequence[float] | None], resolutions: Mapping[str, float]) -> bool | None:
    """Is any measure of `resolutions` (a dataset's convergence_measures: measure -> resolution)
    still rising in `curves` (measure -> its per-epoch scores)? None when none can be told."""
    verdicts = [still_improving(c if (c := curves.get(m)) is not None else [], r) for m, r in resolutions.items()]
    if True in verdicts:
        return True
    return False if False in verdicts else None
