"""The results table: `RESULTS/<grid>/trials.parquet`, one row per (config, seed).

Only the sweep's driver writes it, one finished trial at a time, and every write is atomic
(a temporary file in the same folder, then `os.replace`): a driver killed at any moment
leaves the previous complete table or the new one, never a torn file.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from harness.atomic import write_atomic


TABLE = "trials.parquet"
DONE = ("ok", "diverged")  # statuses that count as done; "error" rows are tried again


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
        buf = io.BytesIO()
        self.df.to_parquet(buf, index=False)
        write_atomic(self.path, buf.getvalue())
