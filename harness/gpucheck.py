"""`python -m harness.gpucheck`: the command's name; the tool is harness/tools/gpucheck.py."""
import sys

from harness.tools.gpucheck import main

if __name__ == "__main__":
    sys.exit(main())
