"""Grid files: Table 1's counts, stable ids, the shipped grids, and one-line errors for bad files."""
from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.grid import GridError, load_grid, main

ROOT = Path(__file__).resolve().parents[1]
GRIDS = ROOT / "grids"
SPEC_DEFAULTS = dict(epochs=25, batchSize=64, nz=100, dropoutRate=0.5, adamBeta1=0.5, adamBeta2=0.999,
                     sgdMomentum=0.0, trainImages=60000, scoreSamples=10000, epochScoreSamples=1000,
                     budgetCounts="dSteps")
ARCH = ("nLayerG", "nLayerD", "sizeG", "sizeD", "dropoutD")


def base() -> dict[str, Any]:
    """A small valid grid: 2 GAN + 2 EBGAN configs."""
    return {
        "settings": dict(SPEC_DEFAULTS),
        "seeds": [0],
        "families": {
            "gan": {"nLayerG": [2, 3], "nLayerD": [2], "sizeG": [400], "sizeD": [128], "dropoutD": [False],
                    "optimD": ["adam"], "optimG": ["sgd"], "lr": [0.001]},
            "ebgan": {"nLayerG": [2], "nLayerD": [2, 3], "sizeG": [400], "sizeD": [128], "dropoutD": [True],
                      "optimD": ["adam"], "optimG": ["adam"], "lr": [0.001], "margin": [10], "wPT": [0]},
        },
    }


def write(tmp_path: Path, doc: Any, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return p


def ids(path: Path) -> list[str]:
    return [c.config_id for c in load_grid(path).configs]


# -- the shipped grids --------------------------------------------------------------------------

def test_table1_counts_and_subgrids():
    g = load_grid(GRIDS / "mnist_table1.yaml")
    assert g.name == "mnist_table1"
    assert g.by_family() == {"ebgan": 512, "gan": 6144}
    subgrids = g.gan_subgrids()
    assert len(subgrids) == 12 and set(subgrids.values()) == {512}
    assert set(subgrids) == {f"{d}/{gg}/lr={lr}" for d in ("adam", "sgd") for gg in ("adam", "sgd")
                             for lr in ("0.01", "0.001", "0.0001")}
    assert len({c.config_id for c in g.configs}) == len(g.configs) == 6656
    ebgan = [c for c in g.configs if c.family == "ebgan"]
    assert {(c.optimD, c.optimG, c.lr, c.margin, c.wPT) for c in ebgan} == {("adam", "adam", 0.001, 10.0, 0.0)}
    arch = {tuple(getattr(c, k) for k in ARCH) for c in ebgan}
    assert len(arch) == 512
    for subgrid in subgrids:  # each GAN subgrid covers the same 512 architecture/dropout points
        assert {tuple(getattr(c, k) for k in ARCH) for c in g.configs
                if c.family == "gan" and c.subgrid == subgrid} == arch
    for c in g.configs:
        assert c.seed == 0 and all(getattr(c, k) == v for k, v in SPEC_DEFAULTS.items())
    assert g.as_dict()["counts"]["total"] == 6656


def test_table1_families_counts_in_multiples_of_512_over_table1s_points():
    g = load_grid(GRIDS / "table1_families.yaml")
    assert g.by_family() == {"lsgan": 1024, "wgan_gp": 1024, "began": 2048}
    table1 = {tuple(getattr(c, k) for k in ARCH) for c in load_grid(GRIDS / "mnist_table1.yaml").configs}
    for model, subgrids in g.subgrids().items():
        for subgrid, n in subgrids.items():
            points = [tuple(getattr(c, k) for k in ARCH) for c in g.configs
                      if c.model == model and c.subgrid == subgrid]
            assert n == 512 and set(points) == table1, (model, subgrid)
    paper = ("adam", "adam", 0.001, 0.5, 0.999)
    shared = {c.family for c in g.configs if (c.optimD, c.optimG, c.lr, c.adamBeta1, c.adamBeta2) == paper}
    assert shared == {"lsgan", "wgan_gp", "began"}              # EBGAN's subgrid, for every family
    wgan = {(c.lr, c.adamBeta1, c.adamBeta2, c.lambdaGP, c.nCritic) for c in g.configs if c.family == "wgan_gp"}
    assert wgan == {(0.001, 0.5, 0.999, 10.0, 5), (0.0001, 0.0, 0.9, 10.0, 5)}   # (A) and Algorithm 1
    assert {c.gamma for c in g.configs if c.family == "began"} == {0.3, 0.5, 0.7}
    for c in g.configs:
        assert c.seed == 0
        own = ("adamBeta1", "adamBeta2", "budgetCounts")
        assert all(getattr(c, k) == SPEC_DEFAULTS[k] for k in SPEC_DEFAULTS if k not in own)
    # every family's G takes as many updates: WGAN-GP (5 critic steps per G step) counts G steps
    assert {(c.family, c.budgetCounts) for c in g.configs} == {("lsgan", "dSteps"), ("wgan_gp", "gSteps"),
                                                               ("began", "dSteps")}


def test_smoke_families_is_one_tiny_config_per_new_family():
    g = load_grid(GRIDS / "smoke_families.yaml")
    assert sorted(c.model for c in g.configs) == ["BEGAN", "LSGAN", "WGAN-GP"]
    for c in g.configs:
        assert c.trainImages == 2000 and c.epochs == 1 and c.sizeG <= 64 and c.sizeD <= 64


def test_families_mini_grid():
    g = load_grid(GRIDS / "families_mini.yaml")
    assert g.by_model() == {"GAN": 32, "EBGAN": 32, "LSGAN": 64, "WGAN-GP": 64, "BEGAN": 128}
    mini = {c.config_id for c in load_grid(GRIDS / "mnist_table1_mini.yaml").configs}
    assert {c.config_id for c in g.configs if c.family in ("gan", "ebgan")} <= mini   # the same runs


def test_yaml_merge_keys_and_overrides(tmp_path):
    doc = yaml.safe_dump(base(), sort_keys=False)
    text = doc.replace("  gan:\n", "  gan: &g\n").replace(
        "  ebgan:\n", "  lsgan:\n    <<: *g\n    lr: [0.01]\n  ebgan:\n")
    g = load_grid(write(tmp_path, text, "merge.yaml"))
    assert {(c.family, c.lr) for c in g.configs} == {("gan", 0.001), ("lsgan", 0.01), ("ebgan", 0.001)}
    with pytest.raises(GridError, match="twice"):
        load_grid(write(tmp_path, text.replace("    lr: [0.01]\n", "    lr: [0.01]\n    lr: [0.1]\n"), "dup.yaml"))


def test_smoke_grid_is_small_and_covers_both_families_and_optimizers():
    g = load_grid(GRIDS / "smoke.yaml")
    assert len(g.configs) == 4
    assert set(g.by_family()) == {"gan", "ebgan"}
    assert {c.optimD for c in g.configs} | {c.optimG for c in g.configs} == {"adam", "sgd"}
    for c in g.configs:
        assert c.trainImages == 2000 and c.batchSize == 64 and c.scoreSamples == 1000
        assert c.epochScoreSamples == 200 and c.seed == 0
        assert c.sizeG <= 64 and c.sizeD <= 64 and c.nLayerG <= 3 and c.nLayerD <= 3
        assert c.epochs * c.trainImages / c.batchSize <= 40


def test_fig4_grid_has_the_papers_three_configs():
    g = load_grid(GRIDS / "mnist_fig4.yaml")
    got = {c.model: c for c in g.configs}
    assert len(g.configs) == 3 and set(got) == {"GAN", "EBGAN", "EBGAN-PT"}
    def arch(c):
        return c.nLayerG, c.nLayerD, c.sizeG, c.sizeD, c.dropoutD, c.optimD, c.optimG, c.lr
    assert arch(got["GAN"]) == (5, 2, 1600, 1024, False, "sgd", "sgd", 0.01)
    for m in ("EBGAN", "EBGAN-PT"):
        assert arch(got[m]) == (5, 2, 800, 1024, False, "adam", "adam", 0.001) and got[m].margin == 10
    assert got["EBGAN"].wPT == 0 and got["EBGAN-PT"].wPT == 0.1
    for c in g.configs:
        assert all(getattr(c, k) == v for k, v in SPEC_DEFAULTS.items())


def test_margin_sweep_grid():
    g = load_grid(GRIDS / "margin_sweep.yaml")
    assert [c.margin for c in g.configs] == [1, 2, 4, 6, 8, 12, 16, 32]
    for c in g.configs:
        assert c.model == "EBGAN"
        assert (c.nLayerG, c.nLayerD, c.sizeG, c.sizeD, c.dropoutD, c.optimD, c.optimG, c.lr) == \
            (5, 2, 1600, 1024, False, "adam", "adam", 0.001)
        assert all(getattr(c, k) == v for k, v in SPEC_DEFAULTS.items())


# -- ids and order ----------------------------------------------------------------------------

def test_ids_stable_under_reordering_and_adding_values(tmp_path):
    doc = base()
    first = ids(write(tmp_path, doc, "a.yaml"))
    assert len(set(first)) == 4 and first == ids(write(tmp_path, doc, "a2.yaml"))  # deterministic

    shuffled = copy.deepcopy(doc)
    shuffled["families"] = {f: {k: list(reversed(v)) for k, v in reversed(list(spec.items()))}
                            for f, spec in reversed(list(doc["families"].items()))}
    shuffled["settings"] = dict(reversed(list(doc["settings"].items())))
    shuffled = dict(reversed(list(shuffled.items())))
    assert sorted(ids(write(tmp_path, shuffled, "b.yaml"))) == sorted(first)

    more = copy.deepcopy(doc)
    more["families"]["gan"]["sizeD"].append(256)
    more["seeds"].append(1)
    grown = ids(write(tmp_path, more, "c.yaml"))
    assert len(grown) == (4 + 2) * 2 and set(first) < set(grown)


def test_list_of_mappings_concatenates_and_dedupes(tmp_path):
    doc = base()
    gan = doc["families"]["gan"]
    doc["families"]["gan"] = [gan, {**gan, "nLayerG": [3, 4]}]  # nLayerG 3 appears twice
    g = load_grid(write(tmp_path, doc, "list.yaml"))
    assert [c.nLayerG for c in g.configs if c.family == "gan"] == [2, 3, 4]


def test_family_overrides_a_setting(tmp_path):
    doc = base()
    doc["families"]["ebgan"]["epochs"] = [1, 2]
    g = load_grid(write(tmp_path, doc, "override.yaml"))
    assert sorted(c.epochs for c in g.configs if c.family == "ebgan") == [1, 1, 2, 2]
    assert {c.epochs for c in g.configs if c.family == "gan"} == {25}


# -- bad grid files ----------------------------------------------------------------------------

def edit(fn: Callable[[dict], None]) -> dict:
    doc = base()
    fn(doc)
    return doc


def gan(doc: dict) -> dict:
    return doc["families"]["gan"]


def ebgan(doc: dict) -> dict:
    return doc["families"]["ebgan"]


BAD: list[tuple[str, Any, str, str]] = [  # id, document, key expected, another part of the message
    ("unknown-key", edit(lambda d: gan(d).update(nlayerG=gan(d).pop("nLayerG"))),
     "families.gan.nlayerG", "did you mean nLayerG?"),
    ("unknown-top-key", edit(lambda d: d.update(seed=[0])), "seed", "seeds"),
    ("unknown-family", edit(lambda d: d["families"].update(ebgam=d["families"].pop("ebgan"))),
     "families.ebgam", "did you mean ebgan?"),
    ("table1-in-settings", edit(lambda d: d["settings"].update(lr=0.001)), "settings.lr", "families"),
    ("empty-list", edit(lambda d: gan(d).update(sizeD=[])), "families.gan.sizeD", "empty list"),
    ("not-a-list", edit(lambda d: gan(d).update(sizeD=128)), "families.gan.sizeD", "[128]"),
    ("str-for-int", edit(lambda d: gan(d).update(nLayerG=["three"])), "families.gan.nLayerG",
     "expected a whole number"),
    ("bool-for-int", edit(lambda d: gan(d).update(nLayerG=[True])), "families.gan.nLayerG", "a boolean"),
    ("int-for-bool", edit(lambda d: gan(d).update(dropoutD=[1])), "families.gan.dropoutD", "true or false"),
    ("yaml-1e-3", edit(lambda d: ebgan(d).update(lr=["1e-3"])),  # how YAML 1.1 reads lr: [1e-3]
     "families.ebgan.lr", "1.0e-3"),
    ("list-in-settings", edit(lambda d: d["settings"].update(epochs=[1, 2])), "settings.epochs", "one value"),
    ("repeated-value", edit(lambda d: gan(d).update(nLayerG=[2, 3, 3])), "families.gan.nLayerG", "repeated"),
    ("ebgan-nLayerD-1", edit(lambda d: ebgan(d).update(nLayerD=[1, 2])), "families.ebgan.nLayerD",
     "decoder layer; GAN's D has"),
    ("gan-with-wPT", edit(lambda d: gan(d).update(wPT=[0.1])), "families.gan.wPT", "a setting of ebgan only"),
    ("margin-in-settings", edit(lambda d: d["settings"].update(margin=10)), "settings.margin", "families.ebgan"),
    ("began-gamma-above-1",
     edit(lambda d: d["families"].update(began={**gan(d), "gamma": [0.5, 1.5], "lambdaK": [0.001]})),
     "families.began.gamma", "must be in [0, 1]"),
    ("wgan-missing-nCritic", edit(lambda d: d["families"].update(wgan_gp={**gan(d), "lambdaGP": [10]})),
     "families.wgan_gp.nCritic", "add nCritic: [5]"),
    ("int-for-nCritic", edit(lambda d: d["families"].update(wgan_gp={**gan(d), "lambdaGP": [10], "nCritic": [2.5]})),
     "families.wgan_gp.nCritic", "expected a whole number"),
    ("bool-seed", edit(lambda d: d.update(seeds=[True])), "seeds", "true"),
    ("negative-lr", edit(lambda d: gan(d).update(lr=[-0.001])), "families.gan.lr", "must be > 0"),
    ("unknown-optimizer", edit(lambda d: gan(d).update(optimD=["rmsprop"])), "families.gan.optimD", "rmsprop"),
    ("missing-table1", edit(lambda d: ebgan(d).pop("margin")), "families.ebgan.margin", "missing"),
    ("missing-setting", edit(lambda d: d["settings"].pop("nz")), "settings.nz", "add nz: 100"),
    ("batch-too-big", edit(lambda d: d["settings"].update(trainImages=10)), "settings.batchSize", "trainImages"),
    ("empty-seeds", edit(lambda d: d.update(seeds=[])), "seeds", "empty list"),
    ("str-seeds", edit(lambda d: d.update(seeds=["a"])), "seeds", "int"),
    ("missing-seeds", edit(lambda d: d.pop("seeds")), "seeds", "missing"),
    ("no-families", edit(lambda d: d.pop("families")), "families", "missing"),
    ("empty-families", edit(lambda d: d.update(families={})), "families", "empty"),
    ("top-level-list", "- 1\n- 2\n", "top level", "mapping"),
    ("empty-file", "", "top level", "empty"),
    ("invalid-yaml", "seeds: [0\nfamilies: {gan: }\n", "line", "invalid YAML"),
    ("duplicate-key", "seeds: [0]\nseeds: [1]\n", "line 2", "twice"),
    ("bad-name", edit(lambda d: d.update(name="../escape")), "name", "folder name"),
    ("unknown-norm", edit(lambda d: gan(d).update(normD=["batch", "group"])), "families.gan.normD", "'group'"),
    ("zero-init-std", edit(lambda d: d["settings"].update(initStdG=0)), "settings.initStdG", "must be a finite"),
]


@pytest.mark.parametrize("doc,key,part", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_grid_raises_one_line(tmp_path, doc, key, part):
    path = write(tmp_path, doc)
    with pytest.raises(GridError) as info:
        load_grid(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {key}"), msg
    assert part in msg, msg
    assert info.value.key.startswith(key) and info.value.fix


def test_the_networks_settings_may_be_left_out_and_then_are_appendix_cs(tmp_path):
    """normG, normD, initStdG and initStdD came after the grids: a grid without them trains Appendix
    C's nets; given under settings they apply to every family, listed under a family they vary."""
    plain = load_grid(write(tmp_path, base(), "plain.yaml")).configs
    assert {(c.normG, c.normD, c.initStdG, c.initStdD) for c in plain} == {("batch", "batch", 0.02, 0.002)}
    doc = base()
    doc["settings"].update(normG="none", initStdD=0.05)
    doc["families"]["gan"]["normD"] = ["batch", "none"]
    g = load_grid(write(tmp_path, doc, "nets.yaml"))
    assert {(c.family, c.normG, c.normD, c.initStdD) for c in g.configs} == {
        ("gan", "none", "batch", 0.05), ("gan", "none", "none", 0.05), ("ebgan", "none", "batch", 0.05)}
    assert len(g.configs) == 6


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(GridError, match=r"nope\.yaml: file: no such file"):
        load_grid(path)


def test_main_counts(capsys):
    assert main([str(GRIDS / "smoke.yaml")]) == 0
    out = capsys.readouterr().out
    assert "smoke: 4 configs" in out and "gan: 2" in out and "ebgan: 2" in out


def test_cli_bad_file_exits_2_with_one_line(tmp_path):
    path = write(tmp_path, edit(lambda d: gan(d).update(nlayerG=gan(d).pop("nLayerG"))))
    r = subprocess.run([sys.executable, "-m", "harness.grid", str(path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "families.gan.nlayerG" in lines[0], r.stderr


def test_margin_sweep_mini_grid():
    g = load_grid(GRIDS / "margin_sweep_mini.yaml")
    assert len(g.configs) == 24 and {c.seed for c in g.configs} == {0, 1, 2}
    assert sorted({c.margin for c in g.configs}) == [1, 2, 4, 6, 8, 12, 16, 32]
    assert {c.model for c in g.configs} == {"EBGAN"} and {c.settings_id for c in g.configs}.__len__() == 8
