"""The results table: `RESULTS/<grid>/trials.parquet`, one row per (config, seed).

Only the sweep's driver writes it, one finished trial at a time, and every write is atomic
(a temporary file in the same folder, then `os.replace`): a driver killed at any moment
leaves the previous complete table or the new one, never a torn file.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

TABLE = "trials.parquet"
DONE = ("ok", "diverged")  # statuses that count as done; "error" rows are tried again


def write_atomic(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultsError(Exception):
    """The results table exists but cannot be read."""


class ResultsTable:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / TABLE
        self.df = pd.DataFrame()
        if self.path.exists():
            try:
                self.df = pd.read_parquet(self.path)
            except Exception as e:  # arrow, OS and format errors alike
                raise ResultsError(f"{self.path} cannot be read ({type(e).__name__}): restore it, "
                                   f"or move it away to start the grid afresh") from None

    def done_ids(self) -> set[str]:
        if self.df.empty:
            return set()
        return set(self.df.loc[self.df["status"].isin(DONE), "configId"])

    def add(self, rows: list[dict]) -> None:
        """Add (or replace, by configId) rows and rewrite the table atomically."""
        new = pd.DataFrame(rows)
        df = new if self.df.empty else pd.concat([self.df, new], ignore_index=True)
        self.df = df.drop_duplicates("configId", keep="last").reset_index(drop=True)
        tmp = self.path.with_name(f".{TABLE}.tmp{os.getpid()}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.df.to_parquet(tmp, index=False)
        os.replace(tmp, self.path)
