"""train.device: cpu, cuda or auto. The CPU results are what they were; CUDA tests run where torch sees a GPU
(and are skipped, with the reason, everywhere else)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from rl_alphamaml.checkpoint import latest_checkpoint, load_checkpoint, restore_state
from rl_alphamaml.cli import load_experiment_config, main
from rl_alphamaml.compute import resolve_device
from rl_alphamaml.errors import UserError
from rl_alphamaml.logging import read_metrics

ROOT = Path(__file__).resolve().parents[2]
SINUSOID = ROOT / "configs" / "sinusoid_alpha.yaml"
NAV = ROOT / "configs" / "navigation2d_alpha_promp.yaml"
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="torch sees no CUDA device on this machine")


def test_auto_is_cuda_only_where_there_is_one() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if CUDA else "cpu")


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_asking_for_cuda_without_one_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match="torch sees no CUDA device"):
        resolve_device("cuda")
    assert main(["train", str(SINUSOID), "--run-dir", str(tmp_path / "run"), "--set", "train.device=cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rl-alphamaml: error: train.device: cuda")
    assert not (tmp_path / "run" / "config.yaml").exists()


def train(config_path: Path, run_dir: Path, device: str, *extra: str) -> list[dict]:
    assert main(["train", str(config_path), "--run-dir", str(run_dir), "--set", f"train.device={device}",
                 "--set", "train.iterations=2", "--set", "train.checkpoint_every=1", *extra]) == 0
    return read_metrics(run_dir)


SMALL_NAV = ["--set", "train.meta_batch=4", "--set", "sampler.episodes=4", "--set", "env.horizon=20"]


@needs_cuda
@pytest.mark.parametrize(("config_path", "extra"), [(SINUSOID, []), (NAV, SMALL_NAV)])
def test_a_cuda_run_matches_the_cpu_run_and_its_checkpoint_loads_on_the_cpu(
        tmp_path: Path, config_path: Path, extra: list[str]) -> None:
    cpu = train(config_path, tmp_path / "cpu", "cpu", *extra)
    gpu = train(config_path, tmp_path / "gpu", "cuda", *extra)
    for a, b in zip(cpu, gpu):  # the same computation, other kernels: equal to float32 rounding
        for key in ("meta/alpha", "meta/beta"):
            assert a[key] == pytest.approx(b[key], rel=1e-3)
    config, kind = load_experiment_config(tmp_path / "gpu" / "config.yaml", ["train.device=cpu"])
    path = latest_checkpoint(tmp_path / "gpu")
    experiment = kind.build(config, tmp_path / "gpu")
    restore_state(experiment, load_checkpoint(path), path)
    assert all(p.device.type == "cpu" for p in experiment.meta.params.values())
    back = dataclasses.replace(config, train=dataclasses.replace(config.train, device="cuda"))
    on_gpu = kind.build(back, tmp_path / "gpu")
    restore_state(on_gpu, load_checkpoint(latest_checkpoint(tmp_path / "cpu")), path)
    assert all(p.device.type == "cuda" for p in on_gpu.meta.params.values())
    assert main(["train", "--resume", str(tmp_path / "gpu"), "--set", "train.iterations=3"]) == 0
