"""One error style for every command: one line `harness: <what>: <why>; fix: <how>` on stderr and
exit 2 for bad input (harness/errors.py)."""
import pickle
import re
import subprocess
import sys

import pytest

from harness.errors import HarnessError, report
from tests.helpers import REPO

LINE = re.compile(r"^harness: .+: .+; fix: .+$")


@pytest.mark.parametrize("command, args", [
    ("harness.sweep", ["{tmp}/nope.yaml", "--results", "{tmp}/results"]),
    ("harness.report", ["{tmp}/nope"]),
    ("harness.score", ["{tmp}/nope.npy", "--no-fid"]),
    ("harness.grid", ["{tmp}/nope.yaml"]),
    ("harness.gpucheck", ["{tmp}/out", "--device", "cpu", "--data-dir", "{tmp}/no-mnist"]),
    ("classifiers.evaluate", ["--classifier", "{tmp}/nope.pt"]),
])
def test_every_command_reports_bad_input_in_one_line(tmp_path, command, args):
    out = subprocess.run([sys.executable, "-m", command, *(a.format(tmp=tmp_path) for a in args)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]), out.stderr
    assert str(tmp_path) in lines[0]  # names the input


def test_the_error_is_one_line_with_its_exit_code_and_survives_pickling(capsys):
    e = HarnessError("thing", "is\nbroken", "mend  it", code=1)
    assert str(e) == "thing: is broken; fix: mend it" and (e.what, e.why, e.fix) == ("thing", "is\nbroken", "mend  it")
    assert report(e) == 1 and capsys.readouterr().err == "harness: thing: is broken; fix: mend it\n"
    from harness.grid import GridError
    again = pickle.loads(pickle.dumps(GridError("g.yaml", "seeds", "missing", "add seeds: [0]")))
    assert isinstance(again, GridError) and str(again) == "g.yaml: seeds: missing; fix: add seeds: [0]"
    assert again.key == "seeds" and again.code == 2
