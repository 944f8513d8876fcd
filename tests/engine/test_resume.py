"""A run killed mid-way continues from its last saved epoch and ends exactly where the run that
was never killed ends (harness.engine.resume): every step's losses, I' per epoch, the final
scores, the steps, for packs and the reference trainer, for every kind of state a family or a
net carries (dropout masks' generators, batch norm's running statistics, Adam's moments, SGD,
WGAN-GP's critic steps and noise, BEGAN's k_t, a member frozen after it diverged). Both runs
happen on the CPU running the test, so this holds on any CPU."""
import json

import pytest

from harness.config import TrainConfig
from harness.engine import Checkpoint, Stopped, train, train_pack
from harness.engine.resume import saved_fraction
from harness.trial import TrialEnv, run_trial

# 1280 images / 64 = 20 steps per epoch, 3 epochs = 60 steps; BN in G and D
TINY = dict(nLayerG=2, nLayerD=2, sizeG=32, sizeD=32, trainImages=1280, epochs=3,
            scoreSamples=500, epochScoreSamples=200)
PACKS = {
    "GAN, dropout, BN, Adam and SGD, two seeds, a diverging member": [
        TrainConfig(family="gan", dropoutD=True, **TINY),
        TrainConfig(family="gan", dropoutD=False, optimD="sgd", optimG="adam", lr=0.01, seed=1, **TINY),
        TrainConfig(family="gan", dropoutD=True, optimD="sgd", optimG="sgd", lr=1e6, **TINY),
    ],
    "WGAN-GP": [
        TrainConfig(family="wgan_gp", normG="none", **TINY),
        TrainConfig(family="wgan_gp", normG="none", lr=0.0001, adamBeta1=0.0, adamBeta2=0.9, seed=1, **TINY),
    ],
    "BEGAN": [
        TrainConfig(family="began", **TINY),
        TrainConfig(family="began", gamma=0.7, seed=2, **TINY),
    ],
}
STOP_AT = 45      # mid-epoch 3: the saves after epochs 1 and 2 are on disk, epoch 3 is lost
# what differs between a run and its resumed twin by design: clocks, paths, the resume's mark
TIMINGS = {"wallTime", "stepsPerSec", "samplesPath", "resumedAtEpoch", "host"}


def stop_after(n: int):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > n
    return stop


def outcome(result) -> str:
    """Everything a row and the per-step losses say, bit for bit (floats by repr, NaN included)."""
    row = {k: v for k, v in result.to_row().items() if k not in TIMINGS}
    return json.dumps({**row, "losses": result.lossHistory}, sort_keys=True, default=str)


def killed_then_resumed(trainer, tmp_path, configs):
    ckpt = Checkpoint.of(tmp_path / "ckpt", configs, "fp32", __import__("torch").device("cpu"), every_s=0)
    with pytest.raises(Stopped):
        trainer(stop=stop_after(STOP_AT), checkpoint=ckpt)
    assert ckpt.path.exists()
    return trainer(checkpoint=ckpt), ckpt


@pytest.mark.parametrize("name", list(PACKS))
def test_a_killed_pack_resumes_from_its_last_saved_epoch_and_ends_as_the_unkilled_one(name, data, scorer, tmp_path):
    configs = PACKS[name]

    def trainer(**kw):
        return train_pack(configs, data, scorer, tmp_path, "cpu", record_losses=True, **kw)
    straight = trainer()
    resumed, _ = killed_then_resumed(trainer, tmp_path, configs)
    assert [outcome(r) for r in resumed] == [outcome(r) for r in straight]
    assert {r.resumedAtEpoch for r in resumed} == {2} and {r.resumedAtEpoch for r in straight} == {None}
    if name.startswith("GAN"):
        assert [r.status for r in resumed] == ["ok", "ok", "diverged"]   # the frozen member stays frozen


def test_a_killed_reference_run_with_dropout_resumes_as_the_unkilled_one(data, scorer, tmp_path):
    cfg = TrainConfig(family="ebgan", dropoutD=True, wPT=0.1, **TINY)

    def trainer(**kw):
        return train(cfg, data, scorer, tmp_path, "cpu", record_losses=True, **kw)
    straight = trainer()
    resumed, _ = killed_then_resumed(trainer, tmp_path, [cfg])
    assert outcome(resumed) == outcome(straight) and resumed.resumedAtEpoch == 2
    assert resumed.wallTime > 0 and resumed.stepsPerSec > 0


def test_another_runs_file_or_a_torn_one_is_ignored_and_the_run_starts_over(data, scorer, tmp_path, capsys):
    configs = PACKS["BEGAN"]
    import torch
    straight = train_pack(configs, data, scorer, tmp_path, "cpu")
    ckpt = Checkpoint.of(tmp_path / "ckpt", configs, "fp32", torch.device("cpu"), every_s=0)
    with pytest.raises(Stopped):
        train_pack(configs, data, scorer, tmp_path, "cpu", stop=stop_after(STOP_AT), checkpoint=ckpt)
    assert saved_fraction(tmp_path / "ckpt", configs) == 40 / 60   # saved after epoch 2 of 3: the projection skips it
    assert saved_fraction(tmp_path / "ckpt", configs[::-1]) == 0.0        # the same file, another pack's order
    other = Checkpoint.of(tmp_path / "ckpt", configs, "bf16", torch.device("cpu"))   # same file, other run
    assert other.path == ckpt.path and other.load() is None
    fresh = train_pack(configs, data, scorer, tmp_path, "cpu", checkpoint=other)
    assert [r.resumedAtEpoch for r in fresh] == [None, None]
    assert [r.IprimePerEpoch for r in fresh] == [r.IprimePerEpoch for r in straight]
    ckpt.path.write_bytes(b"torn")
    assert ckpt.load() is None and "unreadable" in capsys.readouterr().err
    assert saved_fraction(tmp_path / "ckpt", configs) == 0.0


def test_a_save_that_fails_warns_once_and_the_run_goes_on(data, scorer, tmp_path, capsys):
    import torch
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    cfg = TrainConfig(family="gan", **TINY)
    ckpt = Checkpoint.of(blocked, [cfg], "fp32", torch.device("cpu"), every_s=0)
    result = train(cfg, data, scorer, tmp_path, "cpu", checkpoint=ckpt)
    assert result.status == "ok" and result.steps == 60
    assert capsys.readouterr().err.count("cannot save checkpoint") == 1


def test_a_trial_saves_into_the_sweeps_folder_and_removes_its_file_when_its_rows_are_made(data_dir, tmp_path,
                                                                                          monkeypatch):
    import torch
    monkeypatch.setattr("harness.engine.resume.SAVE_EVERY_S", 0.0)
    configs = PACKS["WGAN-GP"]
    env = TrialEnv(str(data_dir), None, checkpoints=str(tmp_path))
    ckpt = Checkpoint.of(tmp_path, configs, "fp32", torch.device("cpu"), every_s=0)
    seen = []
    rows = run_trial(configs, env, on_epoch=lambda epoch, scores: seen.append(ckpt.path.exists()))
    assert len(rows) == 2 and not ckpt.path.exists()
    assert seen == [False, True, True]     # saved after epochs 1 and 2 (not after the last)
