"""`--executor local`: the sweep's packs one after another in this process, without Ray.

For a machine that has PyTorch and no Ray (a lone GPU box): the same packs, table, PNGs,
progress and resume as the Ray executor, one trial at a time on this process's device (the
GPU if there is one and --gpus-per-trial is not 0). It never imports Ray.
"""
from __future__ import annotations

import math

import torch

from harness.executors import ExecutorInfo
from harness.trial import TrialEnv, device_for, pack_label, run_trial


class LocalExecutor:
    storage = None  # no experiment folder of its own

    def __init__(self, args):
        self.retries = args.retries
        self.want_gpu = args.gpus_per_trial != 0  # None (the default) or > 0
        self.threads = max(1, int(args.cpus_per_trial))

    def start(self) -> ExecutorInfo:
        gpu = self.want_gpu and torch.cuda.is_available()
        device = device_for(TrialEnv(None, None, gpu=gpu))
        name = torch.cuda.get_device_name(device) if gpu else f"CPU, {self.threads} thread(s)"
        memory = torch.cuda.get_device_properties(device).total_memory if gpu else None
        return ExecutorInfo(description=f"Local executor: this process, {name}", cpus=self.threads,
                            gpus=1.0 if gpu else 0.0, gpus_per_trial=1.0 if gpu else 0.0, gpu_memory=memory,
                            max_concurrent=1)

    def run(self, packs, resources, env, sink) -> None:
        for i, pack in enumerate(packs):
            if sink.stopping:
                return
            epochs = max(1, math.floor(pack[0].epochs))
            print(f"trial {i + 1}/{len(packs)}: {pack_label(pack)}", flush=True)

            def on_epoch(epoch: int, scores: dict[str, float], i=i) -> None:
                finite = [v for v in scores.values() if math.isfinite(v)]
                best = f"{max(finite):.3f}" if finite else "n/a"
                print(f"  epoch {epoch}/{epochs}: {len(scores)} training, best I' {best}", flush=True)
                sink.epoch(i, epoch, scores)

            sink.started(i)
            for attempt in range(self.retries + 1):
                try:
                    rows = run_trial(pack, env, on_epoch)
                except Exception as e:  # a trial's failure is a row, not the sweep's end
                    message = f"{type(e).__name__}: {e}".splitlines()[0]
                    if attempt < self.retries:
                        print(f"  failed ({message}); retrying ({attempt + 1}/{self.retries})", flush=True)
                        continue
                    sink.failed(i, message)
                else:
                    sink.finished(i, rows)
                break

    def stop(self) -> None:
        pass
