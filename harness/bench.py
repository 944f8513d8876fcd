"""`python -m harness.bench`: the command's name; the tool is harness/tools/bench.py."""
import sys

from harness.tools.bench import main

if __name__ == "__main__":
    sys.exit(main())
