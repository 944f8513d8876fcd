"""harness.report.style: one colour per registered model, told apart with normal vision and with
each simulated dichromacy, whatever colours the families declare."""
from __future__ import annotations

import itertools

import pytest

from harness import families
from harness.report import style


def test_every_registered_label_has_a_distinct_colour_blind_safe_colour():
    colors = style.palette()
    assert list(colors) == list(families.colors())  # every registered label, registry order
    for (a, ca), (b, cb) in itertools.combinations(colors.items(), 2):
        assert style.color_distance(ca, cb) >= style.MIN_DELTA_E, (a, ca, b, cb)


def test_declared_colours_are_kept_where_they_are_distinct():
    okabe_ito = dict(zip(("GAN", "EBGAN", "EBGAN-PT", "LSGAN", "WGAN-GP", "BEGAN"), style.SAFE_COLORS))
    assert style.distinct_colors(okabe_ito) == okabe_ito  # kept as declared
    # the registry's shades of orange: EBGAN keeps its own, LSGAN's (too close for a
    # deuteranope) gives way to a safe colour, and the rest keep theirs
    oranges = {"GAN": "#0173b2", "EBGAN": "#de8f05", "LSGAN": "#d55e00", "BEGAN": "#ca9161"}
    assert style.color_distance("#de8f05", "#d55e00") < style.MIN_DELTA_E
    got = style.distinct_colors(oranges)
    assert got == {**oranges, "LSGAN": got["LSGAN"]} and got["LSGAN"] in style.SAFE_COLORS
    for a, b in itertools.combinations(got.values(), 2):
        assert style.color_distance(a, b) >= style.MIN_DELTA_E


def test_color_distance_sees_what_a_dichromat_cannot():
    # red and green differ with normal vision but nearly vanish for a deuteranope
    red, green = "#d62728", "#2ca02c"
    normal = float(sum((style.color_views(red)["normal"] - style.color_views(green)["normal"]) ** 2) ** 0.5)
    assert normal > 50 and style.color_distance(red, green) < normal / 2
    assert style.color_distance("#000000", "#ffffff") == pytest.approx(100, abs=0.5)
