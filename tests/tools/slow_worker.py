"""A worker for tests/tools/test_gpucheck.py: prints JSON lines as harness.tools.measure workers do, then
sleeps or fails, so that the parent's time limit and error handling can be watched."""
import json
import sys
import time

from harness.tools.measure import emit

if __name__ == "__main__":
    job = json.loads(sys.argv[sys.argv.index("--worker") + 1])
    for i in range(job["lines"]):
        emit({"i": i})
    if job.get("then_fail"):
        raise RuntimeError("planted")
    time.sleep(job.get("then_sleep", 0))
