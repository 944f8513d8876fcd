"""`--executor ray` (the default): one Ray Tune trial per pack, on an embedded local Ray or an
existing cluster (`--address`).

The driver's cost per trial does not grow with the grid:
- Tune's parameters of a trial are its pack's index (and a label for the status table), handed
  out by `PackSearcher`, a counter. (A `tune.grid_search` over the packs' specs, as before, made
  Tune deep-copy every spec for every trial it generated: quadratic in the grid.)
- The packs and the trials' settings reach the workers once, through the object store
  (`tune.with_parameters`), and a trial reads its own pack out of them.
- Worker processes are reused (`reuse_actors`), and `harness.trial` keeps MNIST, the classifier
  and the test set's statistics per process. Packs of similar memory ask for identical
  resources (see `sweep.trial_resources`) so that one process serves many of them.

How rows reach the driver, and why it works on a cluster: a trial reports only numbers to Tune
(epoch, best I', configs), so Tune's experiment state stays small. Its rows (every field and the
sample PNG as bytes) go to `Inbox`, a small actor pinned to the driver's node (0 CPUs, node
affinity), through Ray's own object transfer: no shared file system is needed, only the
driver's machine holds the results folder, and losing a worker node loses no inbox. The trial
waits until the inbox has the rows, then reports its final result; the driver's Tune callback
then drains the inbox and writes the rows. A trial that fails after its put is retried and puts
again; rows are keyed by config id, so nothing is doubled.

Before the Tuner starts, one trivial task with the largest trial's resources must run within
--preflight-timeout; if it cannot, the sweep ends with one line naming the likely cause.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path

from harness.config import TrainConfig
from harness.executors import ExecutorInfo, SweepOptions, SweepStop, disk_full
from harness.trial import TrialEnv, pack_label, run_trial

# Default --gpus-per-trial: four packs in flight per GPU, until a measurement sets it: the
# `concurrency` figures of `python -m harness.gpucheck` (1, 2 and 4 packs in flight on one GPU)
# say how many in flight pay, and this is one over that number.
GPUS_PER_TRIAL = 0.25

TOKEN_FILE = Path.home() / ".ray" / "auth_token"


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (ray.init would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", "ray://...": left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port}: {e}") from None


class native_stderr_held:  # noqa: N801 (a context manager, read as a phrase)
    """File descriptor 2 sent to a temporary file while the preflight's actor runs: Ray's C++
    threads write their own error line straight to it when the actor fails, racing the sweep's
    one line (so sometimes two lines, sometimes one). On success `replay` writes what was held
    to stderr, so nothing is lost; on failure the sweep's one line names the problem."""

    def __enter__(self) -> native_stderr_held:
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)

    def replay(self) -> None:
        self.file.seek(0)
        held = self.file.read()
        self.file.close()
        if held:
            sys.stderr.write(held.decode(errors="replace"))
            sys.stderr.flush()


def auth_hint() -> str:
    """What to try about token authentication, given this process's settings."""
    mode = os.environ.get("RAY_AUTH_MODE", "")
    if mode == "token" or os.environ.get("RAY_AUTH_TOKEN"):
        return ("this driver uses token authentication (RAY_AUTH_MODE=token"
                f"{', token from ' + str(TOKEN_FILE) if TOKEN_FILE.exists() else ''}); if the cluster was "
                "started without it, run with RAY_AUTH_MODE=disabled, else give every node the same token "
                "(RAY_AUTH_TOKEN or ~/.ray/auth_token)")
    return ("if the cluster uses token authentication, put its token in ~/.ray/auth_token or RAY_AUTH_TOKEN "
            "and set RAY_AUTH_MODE=token")


# --- the worker side ----------------------------------------------------------------------------

def pack_trial(config: dict, plan: dict) -> None:
    """Ray Tune trainable: train and score pack number config["pack"], send its rows to the inbox."""
    import math

    import ray
    from ray import tune

    i = config["pack"]
    configs = [TrainConfig.from_dict(d) for d in json.loads(plan["packs"][i])]
    epochs = {"epoch": 0}

    def on_epoch(epoch: int, scores: dict[str, float]) -> None:
        finite = [v for v in scores.values() if math.isfinite(v)]
        epochs["epoch"] = epoch
        tune.report({"epoch": epoch, "Iprime": max(finite, default=math.nan), "training": len(scores)})

    rows = run_trial(configs, plan["env"], on_epoch)
    ray.get(plan["inbox"].put.remote(i, rows))     # the rows are with the driver's node ...
    ok = [r["result"]["Iprime"] for r in rows if r["result"]["status"] == "ok"]
    tune.report({"epoch": epochs["epoch"], "Iprime": max(ok, default=math.nan),  # ... then the result
                 "training": 0, "rows": len(rows)})


def trial_resources_of(config: dict) -> dict:
    return config["resources"]


class StorageFull(logging.Filter):
    """Ray Tune logs (with a traceback) and carries on when its storage is full; this filter drops
    those records and stops the sweep with the sweep's own one-line message instead."""

    def __init__(self, sink, storage: Path):
        super().__init__()
        self.sink, self.storage = sink, storage

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if "No space left on device" in record.getMessage() + repr(exc) or (
                isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
            self.sink.stop(disk_full(self.storage, "Ray Tune's storage"))
            return False
        return True


class Inbox:
    """Rows of finished trials, waiting for the driver (a Ray actor on the driver's node)."""

    def __init__(self):
        self.rows: list[tuple[int, list[dict]]] = []

    def put(self, pack: int, rows: list[dict]) -> None:
        self.rows.append((pack, rows))

    def take(self) -> list[tuple[int, list[dict]]]:
        out, self.rows = self.rows, []
        return out


class Probe:
    """The preflight's actor: trials are actors, so the check is one too."""

    def __init__(self):
        import harness.trial  # noqa: F401  (the project must be importable on the workers)

    def where(self) -> str:
        return socket.gethostname()


# --- the driver side ----------------------------------------------------------------------------

class RayExecutor:
    def __init__(self, options: SweepOptions, folder: Path):
        self.options = options
        self.address = options.address or os.environ.get("RAY_ADDRESS")
        self.storage = Path(options.storage).resolve() if options.storage else folder / "ray"
        self.started = False

    def start(self) -> ExecutorInfo:
        if self.address and "RAY_AUTH_MODE" not in os.environ and TOKEN_FILE.exists():
            os.environ["RAY_AUTH_MODE"] = "token"  # `ray start`'s default, and its token is here (read at import)
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic status table, with our columns
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the results table is the log
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C is the sweep's (exit 130, its own resume hint)
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1e9")
        # ...so Tune finds no per-trial result files at the end: that is expected, not worth a warning
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
        # a failed trial is one line of the sweep's ("finished ... error (message)"), not a traceback
        logging.getLogger("ray.tune.execution.tune_controller").addFilter(
            lambda record: not record.getMessage().startswith("Trial task failed for trial"))
        import ray

        if self.address:
            try:
                check_reachable(self.address)
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError) as e:
                raise SweepStop(f"the Ray cluster at {self.address}",
                                f"cannot be connected to ({str(e).splitlines()[0][:200]})",
                                f"check the address (ray status on the head); {auth_hint()}", 2) from None
        else:
            # address="local": a Ray of the sweep's own, never a cluster found on this machine (ray.init()
            # with no address joins the last `ray start` recorded in /tmp/ray, even a dead one)
            ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
        self.started = True
        res = ray.cluster_resources()
        gpus_available = res.get("GPU", 0)
        gpus = self.options.gpus_per_trial
        if gpus is None:
            gpus = GPUS_PER_TRIAL if gpus_available else 0
        gpu_memory = None
        if gpus:
            import torch
            if torch.cuda.is_available():
                gpu_memory = torch.cuda.get_device_properties(0).total_memory
        where = f"cluster {self.address}" if self.address else "embedded, local"
        self.info = ExecutorInfo(description=f"Ray ({where}): {res.get('CPU', 0):g} CPUs, {gpus_available:g} GPUs",
                                 cpus=res.get("CPU", 0), gpus=gpus_available, gpus_per_trial=gpus,
                                 gpu_memory=gpu_memory, max_concurrent=self.options.max_concurrent)
        return self.info

    def preflight(self, need: dict) -> None:
        """One trivial actor with a trial's resources must start and answer within the timeout."""
        import ray

        shown = ", ".join(f"{k} {v / 2**30:.1f} GiB" if k == "memory" else f"{k} {v:g}" for k, v in need.items() if v)
        fits = [n for n in ray.nodes() if n.get("Alive") and all(
            n["Resources"].get(key, 0) >= need.get(k, 0)
            for k, key in (("cpu", "CPU"), ("gpu", "GPU"), ("memory", "memory")))]
        if not fits:
            raise SweepStop("the Ray cluster", f"no node has what the largest trial asks for ({shown})",
                            "lower --pack-size, --cpus-per-trial or --gpus-per-trial, or add a larger node", 2)
        with native_stderr_held() as held:
            failure = self._probe(need, shown)
            if failure is not None:  # Ray's C++ threads log the failure too: stop them while fd 2 is held
                self.stop()
        if failure is not None:
            raise failure
        held.replay()

    def _probe(self, need: dict, shown: str) -> SweepStop | None:
        """Start the test actor and wait for its answer: None, or why it failed (a SweepStop)."""
        import ray
        from ray.exceptions import GetTimeoutError, RayError

        probe = ray.remote(Probe).options(num_cpus=need["cpu"], num_gpus=need.get("gpu", 0),
                                          memory=need.get("memory") or None, max_restarts=0).remote()
        try:
            ray.get(probe.where.remote(), timeout=self.options.preflight_timeout)
            return None
        except GetTimeoutError:
            return SweepStop("the Ray cluster", f"a test actor asking for {shown} did not start within "
                             f"{self.options.preflight_timeout:g}s (--preflight-timeout), likely because the workers "
                             "cannot authenticate, or the nodes that fit are busy or gone",
                             f"{auth_hint()}; or free or add nodes, or raise --preflight-timeout", 2)
        except RayError as e:
            text = str(e)
            if "ModuleNotFoundError" in text or "No module named" in text:
                return SweepStop("the Ray workers", "cannot import the project",
                                 "install it on every node (pip install -e . in the same environment as ray start)", 2)
            if "never ran" in text:
                return SweepStop("the Ray cluster", "cancelled a test actor before it ran, as it does when the driver "
                                 "and the cluster disagree on authentication", auth_hint(), 2)
            last = [line for line in text.strip().splitlines() if line.strip()][-1][:300]
            return SweepStop("the Ray cluster", f"a test actor failed ({last})", auth_hint(), 2)
        finally:
            ray.kill(probe)

    def run(self, packs: list[list[TrainConfig]], resources: list[dict], env: TrialEnv, sink) -> None:
        import datetime as dt

        import ray
        from ray import tune
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from harness.executors import tune_parts

        self.preflight(max(resources, key=lambda r: (r.get("gpu", 0), r.get("memory", 0), r["cpu"])))
        here = ray.get_runtime_context().get_node_id()
        inbox = ray.remote(Inbox).options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False)).remote()
        plan = {"packs": [json.dumps([c.to_dict() for c in p]) for p in packs], "env": env, "inbox": inbox}
        full = StorageFull(sink, self.storage)
        for name in ("ray.tune.execution.experiment_state", "ray.tune.tune", "ray.tune.execution.tune_controller",
                     "ray.train._internal.syncer"):   # its upload of the experiment's state, every few seconds
            logging.getLogger(name).addFilter(full)
        # a trial's resources travel in its (small) config: Tune unpickles the registered trainable
        # for every trial, so nothing of the grid's size may hang on it
        trainable = tune.with_resources(tune.with_parameters(pack_trial, plan=plan), trial_resources_of)
        # Tune keeps only one trial pending for a searcher of its own (it does so for grid search
        # only): then one trial runs at a time, however many CPUs there are. Enough pending trials
        # to fill the cluster's slots, and a few to spare:
        os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(max(8, 2 * self.info.slots(resources))))
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=tune_parts.PackSearcher([pack_label(p) for p in packs], resources),
                                        num_samples=len(packs), reuse_actors=True,
                                        max_concurrent_trials=self.options.max_concurrent or None),
            run_config=tune.RunConfig(
                name=f"sweep-{dt.datetime.now():%Y%m%d-%H%M%S}", storage_path=str(self.storage),
                stop=tune_parts.StopWhenAsked(sink),
                failure_config=tune.FailureConfig(max_failures=self.options.retries),
                callbacks=[tune_parts.Driver(sink, inbox)],
                progress_reporter=tune_parts.StatusTable(
                    metric_columns={"epoch": "epoch", "Iprime": "best I'", "training": "training"},
                    parameter_columns={"trains": "trial trains"}, max_report_frequency=30,
                    max_progress_rows=12, max_error_rows=5),
                verbose=1),
        )
        tuner.fit()

    def stop(self) -> None:
        if self.started:
            import ray
            ray.shutdown()
            self.started = False

