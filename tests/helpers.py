"""What the sweep's tests share: the CLI in a subprocess, the results table, a Ray head of our own."""
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from harness.results import ResultsTable

REPO = Path(__file__).resolve().parents[1]


def sweep(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.sweep", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, **kw)


def table(results: Path, grid: str = "smoke") -> pd.DataFrame:
    return ResultsTable(results / grid).df


def wait_for_rows(folder: Path, proc: subprocess.Popen, n: int = 1, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.exists() and len(ResultsTable(folder).df) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {n} rows in {folder} (driver exit {proc.poll()})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_head(env: dict | None = None):
    """A `ray start --head --block` cluster of our own on a free port: stopping it (SIGTERM) ends
    its processes only, not every Ray on the machine as `ray stop` would."""
    from harness.executors.raytune import check_reachable
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}",
                             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                check_reachable(f"127.0.0.1:{port}", timeout=1)
                break
            except ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
                time.sleep(0.5)
        time.sleep(3)  # the head's raylet registers after the GCS answers
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=120)
