"""`python -m harness.report`: the command line of harness.report.cli.

`main` lives in cli, not here: the package re-exports it, and a package that imports its own
__main__ makes `python -m` warn on stderr that the module was imported before it ran."""
import sys

from harness.report.cli import main

sys.exit(main())
