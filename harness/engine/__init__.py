"""The training engine: one loop (loop.py) for two backends, the reference trainer (reference.py:
one config, plain torch) and packs (pack.py: K same-shape configs as one stacked model, with
per-member optimizers in pack_optim.py and the speed switches in cuda.py); what the loop draws
(streams.py), how it scores inside a run (scoring.py), how it reads clocks (timing.py) and how a
run saves its state at epoch ends to continue after a kill (resume.py).

    from harness.engine import train, train_pack
    result = train(cfg, data, scorer, samples_dir)            # one TrainResult
    results = train_pack(configs, data, scorer, samples_dir)  # one per config, in their order
"""
from harness.engine.cuda import Speed, SpeedUnsupported
from harness.engine.loop import EpochHook, StopHook, Stopped, TrainResult
from harness.engine.pack import train_pack
from harness.engine.reference import train
from harness.engine.resume import Checkpoint
from harness.engine.timing import StepClock, pick_device

__all__ = ["train", "train_pack", "TrainResult", "Stopped", "EpochHook", "StopHook", "StepClock", "Speed",
           "SpeedUnsupported", "pick_device", "Checkpoint"]
