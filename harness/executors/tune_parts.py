"""Ray Tune's side of `--executor ray`: the searcher that hands out pack indices, the callback
that passes Tune's events to the sweep's sink, the stopper, and the status table. Imported by
harness.executors.raytune when a Ray sweep starts (this module imports Ray)."""
from __future__ import annotations

import json
from pathlib import Path

import ray
from ray.tune import Callback, CLIReporter, Stopper
from ray.tune.search import Searcher


class StatusTable(CLIReporter):
    """Tune's status table, a dozen rows long even in the final report (Tune would list every
    trial there, 1330 for Table 1; the results table has them all)."""

    def report(self, trials, done, *sys_info):
        super().report(trials, False, *sys_info)

class DriverOnly:
    """The Tuner pickles its settings for Tuner.restore, which this harness does not use (it
    resumes from its results table): what holds the driver's live objects pickles empty."""

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        pass

class PackSearcher(Searcher):
    """Hands out pack indices in order, with each pack's label (the status table's) and
    resources: O(1) per trial, a counter as its whole saved state."""

    def __init__(self, labels: list[str], resources: list[dict]):
        super().__init__()
        self.labels, self.resources, self.next = labels, resources, 0

    def suggest(self, trial_id: str):
        if self.next >= len(self.labels):
            return Searcher.FINISHED
        i, self.next = self.next, self.next + 1
        return {"pack": i, "trains": self.labels[i], "resources": self.resources[i]}

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"next": self.next}))

    def restore(self, checkpoint_path: str) -> None:
        self.next = json.loads(Path(checkpoint_path).read_text())["next"]

class Driver(DriverOnly, Callback):
    """Passes Tune's events to the sink; drains the inbox when a trial has sent its rows."""

    def __init__(self, sink, inbox):
        self.sink, self.inbox = sink, inbox

    def drain(self) -> None:
        for pack, rows in ray.get(self.inbox.take.remote()):
            self.sink.finished(pack, rows)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.sink.started(trial.config["pack"])

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "rows" in result:
            self.drain()
        elif result.get("epoch"):
            self.sink.epoch(trial.config["pack"], int(result["epoch"]), {})

    def on_experiment_end(self, trials, **info):
        self.drain()

    def on_trial_error(self, iteration, trials, trial, **info):
        self.drain()
        message = "trial failed"
        if trial.error_file and Path(trial.error_file).exists():
            lines = [l for l in Path(trial.error_file).read_text().strip().splitlines() if l.strip()]
            message = lines[-1] if lines else message
        self.sink.failed(trial.config["pack"], message, failure_provenance(trial))


def failure_provenance(trial) -> dict | None:
    """The provenance the failed trial's exception carries (harness.trial.run_trial), from the
    error Tune keeps for it (Ray's RayTaskError, pickled beside error.txt, the trial's exception
    its `cause`); None when there is none (a worker lost with its node raised nothing)."""
    path = trial.pickled_error_file
    try:
        with open(path, "rb") as f:
            error = ray.cloudpickle.load(f)
    except Exception:   # none, or unreadable here: the rows go without, as before
        return None
    return getattr(getattr(error, "cause", error), "provenance", None)


class StopWhenAsked(DriverOnly, Stopper):
    """Ends the experiment when the sink says so (Ctrl-C, SIGTERM, a full disk)."""

    def __init__(self, sink):
        self.sink = sink

    def __call__(self, trial_id, result):
        return False

    def stop_all(self):
        return self.sink.stopping
