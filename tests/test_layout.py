"""The code's shape, kept by tools rather than by hand: the layers of pyproject.toml's import-linter
contracts (`lint-imports`), no import circle, no file over 500 lines, no function over 80, ruff's
rules, and no argparse namespace below a command's entry point."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "harness").rglob("*.py")) + sorted((REPO / "classifiers").glob("*.py"))
MAX_FILE_LINES, MAX_FUNCTION_LINES = 500, 80
# The commands' entry points: the only modules that parse a command line.
ENTRY_POINTS = {"harness/sweep.py", "harness/grid.py", "harness/score.py", "harness/report/cli.py",
                "harness/tensorboard.py", "harness/tools/bench.py", "harness/tools/gpucheck.py",
                "harness/report/budget.py", "classifiers/train.py", "classifiers/evaluate.py"}


def test_the_layers_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    out = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


def test_no_import_circle():
    """Type hints' imports count too: a circle through `if TYPE_CHECKING:` is still a circle."""
    import grimp
    graph = grimp.build_graph("harness", "classifiers", exclude_type_checking_imports=False)
    circles = [(m, chain) for m in graph.modules for dep in graph.find_modules_directly_imported_by(m)
               if (chain := graph.find_shortest_chain(importer=dep, imported=m))]
    assert not circles, circles[:3]


def test_files_and_functions_are_short():
    long_files, long_functions = [], []
    for path in SOURCES:
        text = path.read_text()
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{path.relative_to(REPO)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {n} lines")
    assert not long_files and not long_functions, long_files + long_functions


def test_only_entry_points_parse_a_command_line():
    parsing = {str(p.relative_to(REPO)) for p in SOURCES if "argparse" in p.read_text()}
    assert parsing <= ENTRY_POINTS, parsing - ENTRY_POINTS


@pytest.mark.skipif(not shutil.which("ruff") and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is installed with the test extra")
def test_ruff_passes():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    out = subprocess.run([ruff, "check", "harness", "classifiers", "tests"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
