"""Grid files: a YAML description of a study, checked in full and expanded into `TrainConfig`s.

    name: mnist_table1          # optional, default: the file's stem; results go to RESULTS/<name>/
    description: ...            # optional
    dataset: ring8              # optional, default mnist: a dataset of harness/datasets/
    mini: grids/..._mini.yaml   # optional: a small twin, named when a full run would take days
    settings:                   # ONE value each, shared by every config: SPEC's defaults
      epochs: 25                #   (every common TrainConfig field except seed and the Table-1
      batchSize: 64             #    settings)
      ...
    seeds: [0]                  # every config runs once per seed
    families:
      ebgan:                    # family -> {setting: [values]}, expanded as a Cartesian product;
        nLayerG: [2, 3, 4, 5]   #   or a list of such mappings, each expanded and concatenated,
        ...                     #   duplicates dropped by config id.
      gan: ...

The families are those registered in harness/families (one file each). Every family gives
every Table-1 setting and every setting of its own (ebgan: margin and wPT; wgan_gp: lambdaGP and
nCritic; ...), and no other family's. A family may also list a shared setting (a `settings`
key), which overrides `settings` for it. No setting falls back to a hidden default: the file
states everything a result row records (the dataset excepted: a grid without `dataset:` is an
MNIST grid, as every grid was before datasets were plugins; and the networks' settings normG,
normD, initStdG and initStdD: a grid without them trains Appendix C's nets, as every grid did
before they were settings).

Order: seeds outermost, then families and list entries in file order, then the product in
the order Table 1's settings, the family's own, the shared ones (the last varies fastest) with
values in list order. Ids are `TrainConfig.config_id`, a hash of the settings and seed, so
reordering the file or adding values never changes an existing config's id.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import itertools
import math
import re
import sys
import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import datasets, families
from harness.config import COMMON_SETTINGS, TABLE1_SETTINGS, ConfigError, TrainConfig
from harness.errors import HarnessError, report
from harness.settings import NET_SETTINGS

DEFAULT_MAX_CONFIGS = 1_000_000  # runs (configs x seeds) a grid may expand to; --max-configs raises it
TOP_KEYS = ("name", "description", "dataset", "mini", "settings", "seeds", "families")
SHARED_SETTINGS = tuple(k for k in COMMON_SETTINGS if k not in TABLE1_SETTINGS + ("seed", "dataset"))
_COMMON_TYPES: dict[str, Any] = typing.get_type_hints(TrainConfig)
_COMMON_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _family_settings() -> dict[str, Any]:
    """Every registered family's own settings and their defaults (names are unique across families)."""
    return {name: default for f in families.all() for name, default in f.settings.items()}


def _type(name: str) -> Any:
    return _COMMON_TYPES[name] if name in _COMMON_TYPES else type(_family_settings()[name])


def _default(name: str) -> Any:
    return _COMMON_DEFAULTS[name] if name in _COMMON_DEFAULTS else _family_settings()[name]


def family_keys(family: str) -> tuple[str, ...]:
    """What a family's entry may set, in product order: Table 1's, its own, the shared ones."""
    return TABLE1_SETTINGS + tuple(families.get(family).settings) + SHARED_SETTINGS


class GridError(HarnessError):
    """A grid file is wrong. The message is one line: '{path}: {key}: {problem}; fix: {fix}'."""

    def __init__(self, path: str, key: str, problem: str, fix: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        super().__init__(f"{path}: {key}", problem, fix)


@dataclass
class Grid:
    name: str
    path: Path
    description: str
    configs: list[TrainConfig]
    settings: dict[str, Any]
    seeds: list[int] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  # the file as parsed
    text: str = ""                                      # the file verbatim, for reports
    mini: str = ""                                      # a small twin of this grid (`mini:`), if named

    def by_family(self) -> dict[str, int]:
        return dict(Counter(c.family for c in self.configs))

    def by_model(self) -> dict[str, int]:
        """Counts per report label (GAN, EBGAN, EBGAN-PT, LSGAN, ...)."""
        return dict(Counter(c.model for c in self.configs))

    def subgrids(self) -> dict[str, dict[str, int]]:
        """{model: {optimizer subgrid: count}} for each model with more than one subgrid."""
        out: dict[str, Counter] = {}
        for c in self.configs:
            out.setdefault(c.model, Counter())[c.subgrid] += 1
        return {m: dict(n) for m, n in out.items() if len(n) > 1}

    def gan_subgrids(self) -> dict[str, int]:
        """Counts per GAN optimizer subgrid (`TrainConfig.subgrid`): Fig. 3's panels."""
        return dict(Counter(c.subgrid for c in self.configs if c.model == "GAN"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": str(self.path), "description": self.description,
            "settings": dict(self.settings), "seeds": list(self.seeds),
            "families": self.raw.get("families", {}),
            "counts": {"total": len(self.configs), "byFamily": self.by_family(),
                       "byModel": self.by_model(), "ganSubgrids": self.gan_subgrids(),
                       "subgrids": self.subgrids()},
        }


def load_grid(path: str | Path, max_configs: int = DEFAULT_MAX_CONFIGS) -> Grid:
    """Read, check and expand a grid file; raise GridError (one line) on the first problem.
    A grid that would expand to more than `max_configs` runs is refused before it is expanded."""
    return _Reader(Path(path), max_configs).read()


# -- reading ----------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (PyYAML keeps the last silently).
    Merge keys (`<<: *anchor`) work as in YAML: the mapping's own keys override the merged ones."""


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, typing.Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark)
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _kind(v: Any) -> str:
    for t, name in ((bool, "a boolean"), (int, "an int"), (float, "a float"), (str, "a string"),
                    (list, "a list"), (dict, "a mapping")):
        if isinstance(v, t):
            return name
    return "empty" if v is None else type(v).__name__


def _yaml(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else _yaml(v)


def _closest(name: str, valid: typing.Sequence[str]) -> str | None:
    lower = {v.lower(): v for v in valid}
    hits = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    return lower[hits[0]] if hits else None


def _home(name: str) -> str | None:
    """Where a name that is valid somewhere in a grid file belongs."""
    if name in TOP_KEYS:
        return f"{name} is a top-level key; move it to the top level"
    if name in SHARED_SETTINGS:
        return "move it under settings (or give it as a list under a family to vary it)"
    if name in TABLE1_SETTINGS:
        return "move it under families.<family>, as a list"
    owner = families.setting_owner(name)
    if owner is not None:
        return f"{name} is a setting of {owner.name} only; move it under families.{owner.name}, as a list"
    if name == "seed":
        return "give seeds as the top-level list seeds: [0, 1, ...]"
    if name == "family":
        return f"the family is the key under families ({', '.join(families.names())})"
    return None


@dataclass
class _Reader:
    path: Path
    max_configs: int = DEFAULT_MAX_CONFIGS

    def error(self, key: str, problem: str, fix: str) -> GridError:
        return GridError(str(self.path), key, problem, fix)

    def read(self) -> Grid:
        text = self.read_text()
        doc = self.parse(text)
        name = doc.get("name", self.path.stem)
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise self.error("name", f"{name!r} is not a usable folder name",
                             "use letters, digits, '_', '-' or '.', e.g. name: mnist_table1")
        description = doc.get("description", "")
        if not isinstance(description, str):
            raise self.error("description", f"is {_kind(description)}, expected a string",
                             "write it as text, e.g. description: my study")
        dataset = self.dataset(doc)
        settings = self.settings(doc.get("settings", {}))
        seeds = self.seeds(doc)
        points = self.families(doc, settings)
        configs: dict[str, TrainConfig] = {}
        for seed in seeds:
            for where, family, axes, point in points:
                c = self.config(where, family, axes, {**point, "dataset": dataset}, seed)
                configs.setdefault(c.config_id, c)
        mini = doc.get("mini", "")
        if not isinstance(mini, str):
            raise self.error("mini", f"is {_kind(mini)}, expected a path", "write mini: grids/<a small twin>.yaml")
        return Grid(name=name, path=self.path, description=description, configs=list(configs.values()), mini=mini,
                    settings=settings, seeds=seeds, raw=doc, text=text)

    def read_text(self) -> str:
        if not self.path.is_file():
            problem = "is a directory" if self.path.is_dir() else "no such file"
            raise self.error("file", problem, "check the path (the project's grids are in grids/)")
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise self.error("file", f"cannot be read ({e})", "check the file's permissions and encoding") from None

    def parse(self, text: str) -> dict[str, Any]:
        try:
            doc = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
            problem = getattr(e, "problem", None) or str(e)
            raise self.error(where, f"invalid YAML ({problem})", "fix the YAML there") from None
        if not isinstance(doc, dict):
            what = "the file is empty" if doc is None else f"the file holds {_kind(doc)}"
            raise self.error("top level", f"{what}, expected a mapping",
                             "write a mapping with settings:, seeds: and families: (see grids/smoke.yaml)")
        for key in doc:
            self.check_key("", key, TOP_KEYS, "unknown key")
        return doc

    def check_key(self, where: str, key: Any, valid: typing.Sequence[str], unknown: str) -> None:
        if key in valid:
            return
        full = f"{where}.{key}" if where else str(key)
        home = _home(str(key))
        if home:
            raise self.error(full, "not allowed here", home)
        match = _closest(str(key), valid)
        raise self.error(full, unknown, f"did you mean {match}?" if match else f"use one of {', '.join(valid)}")

    def check_value(self, key: str, name: str, v: Any) -> None:
        want = _type(name)
        if want is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        else:
            ok = isinstance(v, want) and (want is bool or not isinstance(v, bool))
        if ok:
            return
        expected = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}[want]
        fix = f"write {expected}, e.g. {_yaml(_default(name))}"
        if want is float and isinstance(v, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", v.strip()):
            example = v.strip().replace('e', '.0e').replace('E', '.0e')
            fix = f"write it with a decimal point, e.g. {example} (YAML reads {v} as a string)"
        raise self.error(key, f"{_show(v)} is {_kind(v)}, expected {expected}", fix)

    def settings(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.error("settings", f"is {_kind(raw)}, expected a mapping",
                             "write settings: then one 'name: value' per line")
        for name, v in raw.items():
            self.check_key("settings", name, SHARED_SETTINGS, "unknown setting")
            if isinstance(v, list):
                raise self.error(f"settings.{name}", "is a list, but settings take one value",
                                 f"write one value, or give {name} as a list under a family to vary it")
            self.check_value(f"settings.{name}", name, v)
        return dict(raw)

    def dataset(self, doc: dict[str, Any]) -> str:
        """The top-level `dataset:` (default mnist: every grid written before datasets were plugins)."""
        name = doc.get("dataset", datasets.DEFAULT)
        if datasets.find(name) if isinstance(name, str) else None:
            return name
        hint = _closest(str(name), datasets.names())
        raise self.error("dataset", f"{_show(name)} is not one of {', '.join(datasets.names())}",
                         f"write dataset: {hint or datasets.DEFAULT}")

    def seeds(self, doc: dict[str, Any]) -> list[int]:
        if "seeds" not in doc:
            raise self.error("seeds", "missing", "add seeds: [0]")
        seeds = doc["seeds"]
        if not isinstance(seeds, list):
            raise self.error("seeds", f"{_show(seeds)} is {_kind(seeds)}, not a list", f"write seeds: [{_yaml(seeds)}]")
        if not seeds:
            raise self.error("seeds", "empty list", "give at least one seed, e.g. seeds: [0]")
        for s in seeds:
            if not isinstance(s, int) or isinstance(s, bool) or s < 0:
                raise self.error("seeds", f"{_show(s)} is not a non-negative int",
                                 "write whole numbers, e.g. seeds: [0, 1, 2]")
        if len(set(seeds)) != len(seeds):
            raise self.error("seeds", "a seed is repeated", "list each seed once")
        return list(seeds)

    def families(self, doc: dict[str, Any], settings: dict[str, Any]) -> list[tuple[str, str, dict, dict]]:
        """(where, family, axes, point) for every product point, in order."""
        fams = doc.get("families")
        if not isinstance(fams, dict) or not fams:
            problem = ("missing" if fams is None else
                       "empty" if fams == {} else f"is {_kind(fams)}, expected a mapping")
            raise self.error("families", problem, f"add families: with some of {', '.join(families.names())} "
                                                  "(see grids/smoke.yaml)")
        out, n_runs = [], 0
        n_seeds = len(self.seeds(doc))
        for family, spec in fams.items():
            self.check_key("families", family, families.names(), "unknown family")
            entries = spec if isinstance(spec, list) else [spec]
            if not entries:
                raise self.error(f"families.{family}", "empty list", "give a mapping of settings, or a list of them")
            for i, entry in enumerate(entries):
                where = f"families.{family}" if entries is not spec else f"families.{family}[{i}]"
                axes = self.axes(where, family, entry, settings)
                names = [n for n in family_keys(family) if n in axes or n in settings]
                values = [axes[n] if n in axes else [settings[n]] for n in names]
                n_runs += math.prod(map(len, values)) * n_seeds  # counted before anything is expanded
                if n_runs > self.max_configs:
                    raise self.error(where, f"the grid expands to more than {self.max_configs:,} runs "
                                     f"(this entry alone: {math.prod(map(len, values)) * n_seeds:,})",
                                     "split it into smaller grid files, or raise the limit with --max-configs N")
                out += [(where, family, axes, dict(zip(names, combo))) for combo in itertools.product(*values)]
        return out

    def axes(self, where: str, family: str, entry: Any, settings: dict[str, Any]) -> dict[str, list]:
        if not isinstance(entry, dict):
            raise self.error(where, f"is {_kind(entry)}, expected a mapping of setting: [values]",
                             "write e.g. nLayerG: [2, 3] on its own line under it")
        keys = family_keys(family)
        for name, values in entry.items():
            key = f"{where}.{name}"
            self.check_key(where, name, keys, "unknown setting")
            if not isinstance(values, list):
                raise self.error(key, f"{_show(values)} is {_kind(values)}, not a list",
                                 f"write {name}: [{_yaml(values)}]")
            if not values:
                raise self.error(key, "empty list", f"give at least one value, e.g. {name}: [{_yaml(_default(name))}]")
            for v in values:
                self.check_value(key, name, v)
            if len(set(values)) != len(values):
                raise self.error(key, f"a value is repeated in {_yaml(values)}", "list each value once")
        for name in TABLE1_SETTINGS + tuple(families.get(family).settings):
            if name not in entry:
                raise self.error(f"{where}.{name}", "missing",
                                 f"add {name}: [{_yaml(_default(name))}] (or the values you want)")
        for name in SHARED_SETTINGS:
            if name not in entry and name not in settings and name not in NET_SETTINGS:
                raise self.error(f"settings.{name}", "missing",
                                 f"add {name}: {_yaml(_default(name))} under settings (SPEC's default; "
                                 f"no setting is implicit)")
        return entry

    def config(self, where: str, family: str, axes: dict, point: dict, seed: int) -> TrainConfig:
        try:
            return TrainConfig(family=family, seed=seed, **point)  # type: ignore[arg-type]
        except ConfigError as e:  # TrainConfig.problems(): report the first
            names, _, problem = e.problems[0].partition(": ")
            for name in names.split("/"):
                if name in axes:
                    raise self.error(f"{where}.{name}", problem,
                                     f"change or remove the value {_yaml(point[name])}") from None
            raise self.error(f"settings.{names.split('/')[0]}", problem, "change the value") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.grid",
                                     description="Check a grid file and print its counts.")
    parser.add_argument("grid", type=Path, help="a grid file, e.g. grids/mnist_table1.yaml")
    parser.add_argument("--max-configs", type=int, default=DEFAULT_MAX_CONFIGS,
                        help=f"refuse grids that expand to more runs (default {DEFAULT_MAX_CONFIGS:,})")
    args = parser.parse_args(argv)
    try:
        grid = load_grid(args.grid, max_configs=args.max_configs)
    except GridError as e:
        return report(e)
    print(f"{grid.name}: {len(grid.configs)} configs ({grid.path}, seeds {grid.seeds})")
    for family, n in grid.by_family().items():
        print(f"  {family}: {n}" + ("" if families.get(family).packs else " (not packable: trained one by one)"))
    for model, n in grid.by_model().items():
        print(f"  model {model}: {n}")
    for model, subgrids in grid.subgrids().items():
        print(f"{model} optimizer subgrids:")
        for subgrid, n in subgrids.items():
            print(f"  {subgrid}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
