"""Random, stratified, nested subsets of a grid: what `--sample N --sample-seed S` runs.

For a fixed budget: N configs of a grid drawn at random, stratified so that every stratum (by
default a family's optimizer subgrid, `(family, subgrid)`, the panels of Fig. 3) keeps its share
of the grid, and nested, so that raising N later only adds configs: the runs of a smaller sample
are never wasted.

- The unit drawn is a config's settings: `unit(c)` defaults to `c.settings_id` (shared by all
  seeds of one config), so a sampled config keeps every seed of the grid and seed spreads stay
  computable; objects without `settings_id` fall back to `config_id` (one unit per run). N and
  the note count units; the returned list holds every run (config x seed) of the chosen units.
- Priorities: each unit gets a random 64-bit priority, a SHA-256 hash of (seed, unit key). It
  depends on nothing else: not on the grid's order, nor on which other configs are in the grid.
  Each stratum is ranked by priority; a sample takes the first k_s units of each stratum s.
- Allocation: k_s(N) is the count of stratum s among the first N entries of one fixed sequence
  of strata (`allocation_sequence`), so k_s only grows with N: samples are nested. The sequence
  keeps every prefix proportional: floor(N share_s) <= k_s(N) <= ceil(N share_s), i.e.
  |k_s(N) - N share_s| < 1, for every N (the quota property of Balinski and Young's house-
  monotone apportionment). Hence a stratum gets its first config once N share_s >= 1; with
  equal strata (the Table 1 grids) every stratum has one once N >= the number of strata. No
  minimum of one is forced below that: it would break proportionality when strata are small.
- Editing the grid: the sample is still, in each stratum, the units of highest priority. Adding
  values adds units: a new unit enters a sample only by outranking a unit of its stratum, and
  the strata's shares move with the new sizes, so each k_s may move by about N times the change
  of its share. Units kept in the grid keep their priorities, so most of an earlier sample stays
  sampled; renaming a setting or changing a shared setting changes every id and so every
  priority (a new draw).
"""
from __future__ import annotations

import hashlib
import heapq
import operator
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any


def default_stratum(c: Any) -> Hashable:
    """The stratum of a config: its family and optimizer subgrid (Fig. 3's panels)."""
    return (c.family, c.subgrid)


def default_unit(c: Any) -> str:
    """The unit drawn: a config's settings (all its seeds together), else the run itself."""
    return getattr(c, "settings_id", None) or c.config_id


def priority(seed: int, key: str) -> int:
    """A unit's random priority: the first 8 bytes of SHA-256("seed\\0key"), uniform on
    [0, 2^64). Stable across processes, machines and grid edits (Python's hash() is not)."""
    digest = hashlib.sha256(f"{int(seed)}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def allocation_sequence(sizes: Sequence[int], n: int, tiebreak: Sequence[int] | None = None) -> list[int]:
    """The stratum index of each of the first n picks (n <= sum(sizes)), such that after every
    prefix t each stratum s holds between floor(t q_s) and ceil(t q_s) picks, q_s = sizes[s] / total.

    The j-th pick of s may come at step t only if ceil(t q_s) >= j (its release,
    R = floor((j - 1) total / size) + 1) and must come by the first t with t q_s >= j (its
    deadline, T = ceil(j total / size)). Such a sequence exists (Balinski and Young's quota
    method; Tijdeman 1980, the chairman assignment problem), and earliest-deadline-first over the
    released picks, optimal for unit jobs with integer release times and deadlines, finds one.
    Ties of deadlines go to the smaller `tiebreak` (default: the stratum's index). Integer
    arithmetic throughout, so the sequence is exact for any sizes."""
    sizes = [int(s) for s in sizes]
    total = sum(sizes)
    if any(s < 0 for s in sizes) or not 0 <= n <= total:
        raise ValueError(f"cannot pick {n} of strata sized {sizes}")
    tiebreak = list(range(len(sizes))) if tiebreak is None else list(tiebreak)
    counts = [0] * len(sizes)

    def release(s: int) -> int:  # earliest step of stratum s's next pick (upper quota)
        return counts[s] * total // sizes[s] + 1

    def deadline(s: int) -> int:  # latest step of stratum s's next pick (lower quota)
        return -(-(counts[s] + 1) * total // sizes[s])

    pending = [(release(s), tiebreak[s], s) for s in range(len(sizes)) if sizes[s]]
    heapq.heapify(pending)
    ready: list[tuple[int, int, int]] = []
    order = []
    for step in range(1, n + 1):
        while pending and pending[0][0] <= step:
            _, tb, s = heapq.heappop(pending)
            heapq.heappush(ready, (deadline(s), tb, s))
        due, tb, s = heapq.heappop(ready)  # never empty: sum_s ceil(step q_s) >= step picks are released
        if due < step:  # cannot happen (a feasible sequence exists and EDF finds it)
            raise AssertionError(f"allocation missed a deadline at step {step}")
        order.append(s)
        counts[s] += 1
        if counts[s] < sizes[s]:
            heapq.heappush(pending, (release(s), tb, s))
    return order


def allocate(sizes: Sequence[int], n: int, tiebreak: Sequence[int] | None = None) -> list[int]:
    """Picks per stratum for a sample of n: the counts of `allocation_sequence`'s first n."""
    counts = [0] * len(sizes)
    for s in allocation_sequence(sizes, n, tiebreak):
        counts[s] += 1
    return counts


def sample_configs(configs: Iterable[Any], n: int, seed: int,
                   stratum: Callable[[Any], Hashable] = default_stratum,
                   unit: Callable[[Any], str] = default_unit) -> list[Any]:
    """The configs of n units drawn at random (see the module docstring), in the grid's order.

    n counts units (by default settings: every seed of a drawn config comes with it). n at least
    the number of units: the whole grid. n <= 0: ValueError. A unit whose configs fall in two
    strata: ValueError (the stratum must not depend on the seed)."""
    n = operator.index(n)
    if n <= 0:
        raise ValueError(f"--sample must be a positive number of configs, got {n}")
    configs = list(configs)
    unit_stratum: dict[str, Hashable] = {}
    members: dict[Hashable, list[str]] = {}
    for c in configs:
        u, s = unit(c), stratum(c)
        if u not in unit_stratum:
            unit_stratum[u] = s
            members.setdefault(s, []).append(u)
        elif unit_stratum[u] != s:
            raise ValueError(f"unit {u} lies in two strata, {unit_stratum[u]!r} and {s!r}; "
                             "make the stratum a function of the settings only")
    if n >= len(unit_stratum):
        return configs
    strata = list(members)
    ranked = [sorted(members[s], key=lambda u: (priority(seed, u), u)) for s in strata]
    tiebreak = [priority(seed, "stratum " + repr(s)) for s in strata]
    counts = allocate([len(r) for r in ranked], n, tiebreak)
    chosen = {u for r, k in zip(ranked, counts, strict=True) for u in r[:k]}
    return [c for c in configs if unit(c) in chosen]


def sample_note(n_sampled: int, n_total: int, seed: int) -> str:
    """One line saying what a sampled run covers, for logs and reports."""
    if n_sampled >= n_total:
        return f"all {n_total} configs"
    return f"{n_sampled} of {n_total} configs, sampled at random (seed {seed})"
