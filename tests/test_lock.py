"""One driver per results folder: a second one exits 2 naming the holder; a dead one's lock is taken over."""
import json
import os
import socket
import subprocess
import sys

from tests.helpers import REPO, sweep


def test_second_driver_on_a_folder_exits_2_naming_the_holder(tmp_path, data_dir):
    from harness.lock import FolderLock
    with FolderLock(tmp_path / "smoke"):
        out = sweep("grids/smoke.yaml", "--results", tmp_path, "--data-dir", data_dir, "--executor", "local")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert f"pid {os.getpid()}" in out.stderr and socket.gethostname() in out.stderr and "since" in out.stderr
    assert not (tmp_path / "smoke" / "trials.parquet").exists()


def test_a_dead_drivers_lock_is_taken_over_with_a_note(tmp_path):
    from harness.lock import LOCK_FILE, FolderLock
    code = f"from harness.lock import FolderLock; FolderLock({str(tmp_path)!r}).acquire(); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)  # dies holding it
    record = json.loads((tmp_path / LOCK_FILE).read_text())
    with FolderLock(tmp_path) as lock:
        assert lock.note and f"pid {record['pid']}" in lock.note
    with FolderLock(tmp_path) as lock:  # released properly: no note
        assert lock.note is None
