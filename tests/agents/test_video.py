"""``rl-alphamaml evaluate RUN_DIR --video``: before/after clips as GIFs and in TensorBoard, and the clear
message (with the numbers still written) where MuJoCo cannot render."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

import envs  # noqa: F401 - MuJoCo is imported before any test changes MUJOCO_GL
from agents.trainer import RLExperiment
from rl_alphamaml import rendering, seeding
from rl_alphamaml.cli import load_experiment_config, main

ROOT = Path(__file__).resolve().parents[2]
NAV = ROOT / "configs" / "navigation2d.yaml"
HORIZON = 10
TINY = ["train.iterations=1", "train.meta_batch=2", "sampler.episodes=2", "policy.hidden=[8]",
        f"env.horizon={HORIZON}", "sampler.threads=1", "train.checkpoint_every=1"]


def tiny_run(path: Path, *overrides: str) -> Path:
    args = [x for s in [*TINY, *overrides] for x in ("--set", s)]
    assert main(["train", str(NAV), "--run-dir", str(path), *args]) == 0
    return path


@pytest.fixture(scope="module")
def nav_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("nav") / "run")


@pytest.fixture(scope="module")
def cheetah_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("cheetah") / "run", "env.id=rl_alphamaml/HalfCheetahVel-v0",
                    "env.goal_tolerance=null")


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of a shared run, so that tests writing its eval folder do not see each other."""
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def gif_frames(path: Path) -> tuple[int, tuple[int, int], list[np.ndarray]]:
    with Image.open(path) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
        return im.n_frames, im.size, frames


def tensorboard_images(log_dir: Path) -> dict[str, tuple[tuple[int, int], bytes, str]]:
    """Every image summary in ``log_dir``: its (width, height), encoded image and description, by tag."""
    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        meta = acc.SummaryMetadata(tag)
        if meta.plugin_data.plugin_name == "images":
            width, height, image = tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto)
            out[tag] = ((int(width), int(height)), bytes(image), meta.summary_description)
    return out


def cli(run_dir: Path, gl: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MUJOCO_GL": gl, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rl_alphamaml", "evaluate", str(run_dir), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_clear_message(err: str) -> None:
    assert "rl-alphamaml: warning: no videos: cannot render MuJoCo offscreen" in err
    assert "apt-get install libosmesa6" in err and "MUJOCO_GL=osmesa" in err and "MUJOCO_GL=egl" in err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_navigation_clips_are_saved_as_gifs_and_shown_in_tensorboard(
        nav_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(nav_run), "--tasks", "3", "--steps", "1", "--video", "--video-tasks", "2"]) == 0
    out = capsys.readouterr().out
    eval_dir = nav_run / "eval"
    report = json.loads((eval_dir / "adaptation.json").read_text())
    assert sorted(p.name for p in (eval_dir / "videos").iterdir()) == ["task0_before_after.gif",
                                                                       "task1_before_after.gif"]
    for i in range(2):
        path = eval_dir / "videos" / f"task{i}_before_after.gif"
        n, size, frames = gif_frames(path)
        assert n == HORIZON + 1  # the initial state and one frame per step
        assert size == (2 * 240 + 4, 160)  # before | 4-pixel gap | after
        assert not np.array_equal(frames[0], frames[-1])  # the agent moved
        assert f"{path}: goal=" in out  # the caption names the task, which is the report's task i
        goal = report["tasks"][i]["goal"]
        assert f"goal=({goal[0]:.3f}, {goal[1]:.3f})" in out
    images = tensorboard_images(eval_dir)
    assert set(images) == {"eval/video/task0_before_after", "eval/video/task1_before_after"}
    size, gif, caption = images["eval/video/task0_before_after"]
    assert size == (2 * 240 + 4, 160)
    assert gif == (eval_dir / "videos" / "task0_before_after.gif").read_bytes() and gif.startswith(b"GIF89a")
    assert caption.startswith("goal=(") and "left: before adaptation" in caption


def test_unavailable_rendering_says_how_to_enable_it_and_the_numbers_are_written(
        cheetah_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gymnasium.envs.mujoco.mujoco_rendering import OffScreenViewer

    def no_backend(self: OffScreenViewer, width: int, height: int) -> None:  # gymnasium's own failure
        raise RuntimeError("No OpenGL backend could be imported. Attempting to create a rendering context will "
                           "result in a RuntimeError.")

    monkeypatch.setattr(OffScreenViewer, "_get_opengl_backend", no_backend)
    run_dir = copy_run(cheetah_run, tmp_path)
    assert main(["evaluate", str(run_dir), "--tasks", "2", "--steps", "1", "--video"]) == 0
    err = capsys.readouterr().err
    assert_clear_message(err)
    assert "No OpenGL backend could be imported" in err
    report = json.loads((run_dir / "eval" / "adaptation.json").read_text())
    assert report["num_tasks"] == 2 and [r["steps"] for r in report["adaptation"]] == [0, 1]
    assert not (run_dir / "eval" / "videos").exists()


def test_a_mujoco_gl_that_cannot_work_gives_the_message_not_an_import_crash(cheetah_run: Path, tmp_path: Path) -> None:
    # MuJoCo reads MUJOCO_GL on import, and a backend it cannot load (MUJOCO_GL=osmesa without libOSMesa, or a
    # misspelling as here) makes `import mujoco` fail; evaluate --video must still write the numbers.
    run_dir = copy_run(cheetah_run, tmp_path)
    proc = cli(run_dir, "osmesaa", "--tasks", "2", "--steps", "1", "--video")
    assert proc.returncode == 0, proc.stderr
    assert_clear_message(proc.stderr)
    assert "MUJOCO_GL='osmesaa' is not one of MuJoCo's offscreen backends" in proc.stderr
    assert (run_dir / "eval" / "adaptation.json").is_file()
    assert not (run_dir / "eval" / "videos").exists()


def test_gl_backend_problems_are_named_without_importing_mujoco(monkeypatch: pytest.MonkeyPatch) -> None:
    assert rendering.gl_backend_problem({}) is None
    assert "not one of" in str(rendering.gl_backend_problem({"MUJOCO_GL": "opengl"}))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    problem = rendering.gl_backend_problem({"MUJOCO_GL": "osmesa"})
    assert problem is not None and "OSMesa library is not installed" in problem and "libosmesa6" in problem
    assert "EGL library is not installed" in str(rendering.gl_backend_problem({"MUJOCO_GL": "egl"}))
    assert rendering.gl_backend_problem({"MUJOCO_GL": "glfw"}) is None


def _working_backend() -> str:
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    return "osmesa" if ctypes.util.find_library("OSMesa") else "egl"


def test_halfcheetah_is_filmed_where_mujoco_can_render(cheetah_run: Path, tmp_path: Path) -> None:
    gl = _working_backend()
    run_dir = copy_run(cheetah_run, tmp_path)
    proc = cli(run_dir, gl, "--tasks", "1", "--steps", "1", "--video", "--video-tasks", "1")
    assert proc.returncode == 0, proc.stderr
    if "no videos" in proc.stderr:
        pytest.skip(f"MuJoCo offscreen rendering is unavailable here with MUJOCO_GL={gl}: {proc.stderr.strip()}")
    path = run_dir / "eval" / "videos" / "task0_before_after.gif"
    n, size, frames = gif_frames(path)
    assert n == HORIZON + 1 and size == (2 * 240 + 4, 160)
    assert float(np.std(frames[-1])) > 20  # a rendered scene, not a blank frame
    assert "task0_before_after.gif: velocity=" in proc.stdout
    assert tensorboard_images(run_dir / "eval")["eval/video/task0_before_after"][1] == path.read_bytes()


def test_adapt_params_is_the_evaluation_adaptation(nav_run: Path) -> None:
    config, _ = load_experiment_config(nav_run / "config.yaml")
    experiment = RLExperiment(config, num_tasks=2)
    try:
        tasks = experiment.sampler.sample_tasks(seeding.rng(5, "evaluate"))
        theta = experiment.meta.params
        params0, values0 = experiment.learner.adapt_params(tasks, 0, (5, 7))
        assert all(torch.equal(params0[n], theta[n].detach().expand_as(params0[n])) for n in theta)
        params, values = experiment.learner.adapt_params(tasks, 2, (5, 7))
        assert values == experiment.learner.adaptation_curve(tasks, 2, (5, 7))
        assert values[0] == values0[0] and len(values) == 3
        assert not torch.equal(params["mean.bias"][0], theta["mean.bias"].detach())
        assert not any(p.requires_grad for p in params.values())
    finally:
        experiment.close()


def test_video_needs_a_kind_with_episodes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         nav_run: Path) -> None:
    run_dir = tmp_path / "sinusoid"
    assert main(["train", str(ROOT / "configs" / "sinusoid.yaml"), "--run-dir", str(run_dir),
                 "--set", "train.iterations=1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--video"]) == 2
    err = capsys.readouterr().err
    assert "--video: a kind: sinusoid run has no episodes to render; videos are made for kind: rl" in err
    assert main(["evaluate", str(nav_run), "--video", "--video-tasks", "0"]) == 2
    assert "--video-tasks must be at least 1" in capsys.readouterr().err
