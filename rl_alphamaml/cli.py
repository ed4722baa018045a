"""The ``rl-alphamaml`` command line.

::

    rl-alphamaml train CONFIG [--run-dir DIR] [--set KEY=VALUE ...]
    rl-alphamaml train --resume RUN_DIR [--set KEY=VALUE ...]
    rl-alphamaml evaluate RUN_DIR [--checkpoint PATH] [--tasks N] [--steps K] [--seed S] [--protocol metaworld]
                          [--video [--video-tasks N]]
    rl-alphamaml compare RUN_DIR [RUN_DIR ...] [--tasks N] [--steps K] [--methods ...] [--ppo-budgets ...]
    rl-alphamaml data omniglot [--root DIR]
    rl-alphamaml config KIND [--markdown]

This is the only module that imports the learners of every kind (``agents`` for ``kind: rl``); each
kind's module ends with ``KIND``, an :class:`~rl_alphamaml.kind.ExperimentKind` (its config class, ``build``,
``evaluate``, the evaluation defaults and, for a kind that can film its tasks, ``videos``).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rl_alphamaml import resume, runlock
from rl_alphamaml.checkpoint import latest_checkpoint, load_checkpoint, restore_state
from rl_alphamaml.config import build_config, read_yaml
from rl_alphamaml.errors import ConfigError, UserError
from rl_alphamaml.evaluation import check_writable, write_report
from rl_alphamaml.kind import ExperimentKind
from rl_alphamaml.rendering import RenderingUnavailableError, guard_gl_backend, write_videos
from rl_alphamaml.rundir import RunDir, config_path
from rl_alphamaml.runner import close_experiment, make_run_dir, prepare_run_dir, set_threads, train
from rl_alphamaml.seeding import MAX_STREAM_SEED, evaluation_seed

#: ``evaluate --protocol metaworld``'s inner steps when ``--steps`` is not given (metaworld's adaptation_steps; the one
#: place this default lives)
METAWORLD_STEPS = 1

KIND_MODULES = {
    "sinusoid": "rl_alphamaml.supervised.sinusoid",
    "omniglot": "rl_alphamaml.supervised.omniglot_trainer",
    "rl": "agents.trainer",
}


def experiment_kind(kind: Any, source: str) -> ExperimentKind:
    """The :class:`~rl_alphamaml.kind.ExperimentKind` named ``kind`` (its module imported only now)."""
    if not isinstance(kind, str) or kind not in KIND_MODULES:
        raise ConfigError(f"{source}: kind: must be one of {', '.join(sorted(KIND_MODULES))}, got {kind!r}")
    found = importlib.import_module(KIND_MODULES[kind]).KIND
    assert isinstance(found, ExperimentKind) and found.name == kind
    return found


def load_experiment_config(path: Path, overrides: Sequence[str] = ()) -> tuple[Any, ExperimentKind]:
    """Read a config file, pick its kind and validate it (with ``--set`` overrides)."""
    data = read_yaml(path)
    data.setdefault("experiment", path.stem)
    kind = experiment_kind(data.get("kind"), str(path))
    if any(text.split("=", 1)[0].strip() == "kind" for text in overrides):
        raise ConfigError(f"{path}: --set kind: a config's kind cannot be overridden (its sections are a "
                          f"kind: {data['kind']}'s); start from a config of the kind you want, e.g. configs/")
    return build_config(data, {kind.name: kind.config}, str(path), overrides), kind


def check_seed(seed: int) -> None:
    """``--seed`` of evaluate and compare (it names random streams, :mod:`rl_alphamaml.seeding`)."""
    if not 0 <= seed <= MAX_STREAM_SEED:
        raise UserError(f"--seed must be between 0 and {MAX_STREAM_SEED}, got {seed}")


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        if args.config is not None or args.run_dir is not None:
            raise UserError("--resume RUN_DIR takes no CONFIG and no --run-dir: the run folder holds both")
        run_dir = Path(args.resume)
        config_path(run_dir)  # a run folder, before a lock file is put into it
        with runlock.hold(run_dir):  # before the folder is read: another process may be writing it
            return resume_run(run_dir, args.set)
    if args.config is None:
        raise UserError("train needs a CONFIG file (e.g. configs/sinusoid.yaml) or --resume RUN_DIR")
    config, kind = load_experiment_config(Path(args.config), args.set)
    run_dir = make_run_dir(config, args.run_dir)
    with runlock.hold(run_dir):
        prepare_run_dir(config, run_dir)
        print(f"run folder: {run_dir}", file=sys.stderr)
        return train(config, kind.build, run_dir)


def resume_run(run_dir: Path, overrides: Sequence[str]) -> int:
    """``train --resume RUN_DIR --set …``, with the folder's lock held."""
    saved, _ = load_experiment_config(config_path(run_dir))
    payload = load_checkpoint(latest_checkpoint(run_dir), kind=saved.kind)  # fail early if nothing to resume
    completed = resume.finish_interrupted(run_dir, payload)  # before the folder is read for --set
    if completed:
        print(f"{run_dir}: completed the record of a resume that was killed: {'; '.join(completed)}",
              file=sys.stderr)
        saved, _ = load_experiment_config(config_path(run_dir))
    config, kind = load_experiment_config(config_path(run_dir), overrides)
    changes = resume.changes(saved, config, int(payload["iteration"]))
    return train(config, kind.build, run_dir, resume=True, changes=changes, completed=completed)


def cmd_evaluate(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    config_file = config_path(run_dir)
    if args.video:
        guard_gl_backend()  # before MuJoCo is imported: a MUJOCO_GL that cannot work must not stop the numbers
    config, kind = load_experiment_config(config_file)
    if args.video and kind.videos is None:
        raise UserError(f"--video: a kind: {config.kind} run has no episodes to render; videos are made for kind: rl")
    if args.video_tasks < 1:
        raise UserError("--video-tasks must be at least 1")
    if (args.episodes is not None or args.inner_lr is not None) and "episodes" not in kind.evaluate_options:
        raise UserError(f"--episodes and --inner-lr apply to kind: rl runs, this one is kind: {config.kind}")
    if args.episodes is not None and args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    if args.inner_lr is not None and any(not (lr > 0 and math.isfinite(lr)) for lr in args.inner_lr):
        raise UserError("--inner-lr takes positive rates, e.g. --inner-lr 0.5 0.25")
    if args.protocol is not None and "protocol" not in kind.evaluate_options:
        raise UserError(f"--protocol applies to kind: rl runs, this one is kind: {config.kind}")
    tasks = args.tasks if args.tasks is not None else kind.eval_tasks
    steps = args.steps if args.steps is not None else METAWORLD_STEPS if args.protocol == "metaworld" else \
        kind.eval_steps
    seed = args.seed if args.seed is not None else evaluation_seed(config.seed)
    check_seed(seed)
    if tasks < 1 or steps < 0:
        raise UserError("--tasks must be at least 1 and --steps at least 0")
    check_writable(run_dir / "eval")  # before the (long) evaluation, not after it
    path = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(run_dir)
    payload = load_checkpoint(path, kind=config.kind)
    set_threads(config)
    experiment = kind.build(config, run_dir)
    try:
        restore_state(experiment, payload, path)
    except UserError:
        close_experiment(experiment)
        raise
    rl_options: dict[str, Any] = {}
    if args.episodes is not None:
        rl_options["episodes"] = args.episodes
    if args.inner_lr is not None:
        rl_options["inner_lrs"] = args.inner_lr
    protocol = {} if args.protocol is None else {"protocol": args.protocol}
    try:
        result = kind.evaluate(experiment, tasks, steps, seed, **rl_options, **protocol)
    finally:
        close_experiment(experiment)
    result.checkpoint = str(path)
    result.checkpoint_iteration = int(payload["iteration"])
    title = f"{config.experiment}: {tasks} held-out tasks, checkpoint iteration {payload['iteration']}"
    if args.protocol == "metaworld":
        title += ", Meta-World's protocol"
    write_report(run_dir, result, title)
    if args.video:
        try:
            assert kind.videos is not None
            clips = kind.videos(experiment, tasks, steps, seed, min(args.video_tasks, tasks), **rl_options)
        except RenderingUnavailableError as err:  # the numbers are written; say how to get the videos too
            print(f"rl-alphamaml: warning: no videos: {err}", file=sys.stderr)
        else:
            write_videos(run_dir, clips, result.checkpoint_iteration)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from agents import compare  # kind: rl only

    run_dirs = [Path(p) for p in args.run_dirs]
    out = Path(args.out) if args.out else run_dirs[0] / "eval" / "compare"
    check_not_in_a_run_in_use(out)
    first = compare.load_run(run_dirs[0])
    seed = args.seed if args.seed is not None else evaluation_seed(first.config.seed)
    check_seed(seed)
    check_writable(out)  # before the (long) measurements, not after
    set_threads(first.config)
    report = compare.compare(run_dirs, args.tasks, args.steps, seed, args.methods, args.ppo_budgets, args.ppo_tasks)
    command = " ".join(["rl-alphamaml compare", *map(str, run_dirs), f"--tasks {args.tasks}", f"--steps {args.steps}",
                        f"--seed {seed}", "--methods", *args.methods, "--ppo-budgets", *map(str, args.ppo_budgets),
                        *([f"--ppo-tasks {args.ppo_tasks}"] if args.ppo_tasks else [])])
    print(compare.render_markdown(report, command), flush=True)  # the numbers first: a failed write cannot lose them
    md = compare.write(report, out, command)
    print(f"wrote {md}, {out / 'compare.json'} and {out / 'compare.png'}", file=sys.stderr)
    return 0


def check_not_in_a_run_in_use(out: Path) -> None:
    """Refuse ``compare --out`` inside a run folder that a ``train`` holds, unless under its ``eval/`` (the only
    part of a run that is not the training's: :mod:`rl_alphamaml.runlock`)."""
    target = out.absolute()
    for folder in (target, *target.parents):
        if RunDir(folder).config.is_file():
            held = runlock.holder(folder)
            if held is not None and not target.is_relative_to(RunDir(folder).eval.absolute()):
                raise UserError(f"--out {out}: {folder} is in use by {held.describe()}; write the comparison under "
                                f"{RunDir(folder).eval} or elsewhere")
            return


def config_markdown(kind: str) -> str:
    """Every config key of ``kind`` as a Markdown table: key, type, default, range, meaning.

    What ``rl-alphamaml config KIND --markdown`` prints, and what the documentation site's configuration page is
    generated from at build time (``docs/hooks.py``). A ``|`` inside a cell (a type such as ``'v5' | null``) is
    escaped, so the table keeps its five columns.
    """
    from rl_alphamaml.config import describe

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| key | type | default | range | meaning |", "| --- | --- | --- | --- | --- |"]
    for r in describe(experiment_kind(kind, "config").config):
        lines.append(f"| `{r.key}` | {cell(r.type)} | {cell(repr(r.default))} | {cell(r.range)} | {cell(r.doc)} |")
    return "\n".join(lines)


def cmd_config(args: argparse.Namespace) -> int:
    from rl_alphamaml.config import describe

    if args.markdown:
        print(config_markdown(args.kind))
        return 0
    rows = describe(experiment_kind(args.kind, "config").config)
    width = max(len(r.key) for r in rows)
    for r in rows:
        print(f"{r.key:<{width}}  {r.type}  (default {r.default!r}{', ' + r.range if r.range else ''})")
        if r.doc:
            print(f"{'':<{width}}  {r.doc}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from rl_alphamaml.supervised.omniglot_download import BASE_URL, download_omniglot

    folder = download_omniglot(args.root, args.url or BASE_URL)
    print(f"Omniglot is in {folder}" + ("" if args.root else " (found there without data.root)"))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the toolkit's error format for bad arguments (an unknown command, a missing RUN_DIR, a
    value of the wrong type): one ``rl-alphamaml: error: …`` line naming where the usage is, exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("rl-alphamaml").strip()
        usage = f"rl-alphamaml {command} --help" if command else "rl-alphamaml --help"
        self.exit(2, f"rl-alphamaml: error: {' '.join(message.split())} (usage: {usage})\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rl-alphamaml", description="Meta-train with (Alpha) MAML and evaluate fast adaptation."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="meta-train from a config, or resume a run")
    tr.add_argument("config", nargs="?", help="experiment YAML file, e.g. configs/sinusoid_alpha.yaml")
    tr.add_argument("--run-dir", help="run folder (default: runs/<experiment>-<timestamp>)")
    tr.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its newest checkpoint")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value by dotted key, e.g. --set inner.lr=0.1 (repeatable)")
    tr.set_defaults(func=cmd_train)
    ev = sub.add_parser("evaluate", help="adapt a trained run to new tasks and report the metric after 0..K steps")
    ev.add_argument("run_dir")
    ev.add_argument("--checkpoint", help="a checkpoint file of the run (default: the newest)")
    ev.add_argument("--tasks", type=int, help="number of new tasks")
    ev.add_argument("--steps", type=int, help="inner gradient steps K")
    ev.add_argument("--seed", type=int, help="seed of the new tasks (default: the run's seed + 1000003)")
    ev.add_argument("--episodes", type=int, metavar="N",
                    help="kind: rl: episodes per task and per step (default: the run's sampler.episodes)")
    ev.add_argument("--inner-lr", type=float, nargs="+", metavar="ALPHA",
                    help="kind: rl: α of each inner step instead of the run's (one α, or its per-step α_j), the last "
                         "for every later step (the MAML paper's navigation evaluation: --inner-lr 0.5 0.25)")
    ev.add_argument("--protocol", choices=["maml", "metaworld"],
                    help="kind: rl: maml (default): the mean return (and a family's success rate) of sampled episodes "
                         "after 0..K steps; metaworld: Meta-World's evaluation of its families: each task adapted on "
                         "10 sampled episodes per step (--episodes), scored on 3 episodes of the mean action that "
                         f"end on success, the success rate first (--steps defaults to {METAWORLD_STEPS})")
    ev.add_argument("--video", action="store_true",
                    help="also render episodes before and after adaptation to RUN_DIR/eval/videos and TensorBoard "
                         "(kind: rl; MuJoCo families need MUJOCO_GL=egl or osmesa)")
    ev.add_argument("--video-tasks", type=int, default=3, metavar="N",
                    help="render the first N of the tasks (default 3)")
    ev.set_defaults(func=cmd_evaluate)
    cmp = sub.add_parser("compare", help="meta-trained runs against pretrained, random-init and PPO-from-scratch "
                                         "baselines on the same held-out tasks (kind: rl)")
    cmp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                     help="kind: rl runs of one family (MAML, Alpha MAML, pretrained with inner.steps 0)")
    cmp.add_argument("--tasks", type=int, default=20, help="held-out tasks (default 20)")
    cmp.add_argument("--steps", type=int, default=3, help="inner gradient steps K (default 3)")
    cmp.add_argument("--seed", type=int,
                     help="seed of the tasks (default as evaluate's: the first run's seed + 1000003)")
    cmp.add_argument("--methods", nargs="+", default=["runs", "random", "ppo"], choices=["runs", "random", "ppo"],
                     help="which methods to run (default all)")
    cmp.add_argument("--ppo-budgets", nargs="+", type=float, default=[1.0, 10.0], metavar="X",
                     help="PPO budgets as multiples of the K-step adaptation's environment steps (default 1 10)")
    cmp.add_argument("--ppo-tasks", type=int, help="run PPO on the first M tasks only (it is slow; default all)")
    cmp.add_argument("--out", help="output folder (default RUN_DIR/eval/compare of the first run)")
    cmp.set_defaults(func=cmd_compare)
    cf = sub.add_parser("config", help="every config key of a kind: type, default, range and meaning")
    cf.add_argument("kind", choices=sorted(KIND_MODULES))
    cf.add_argument("--markdown", action="store_true", help="as a Markdown table")
    cf.set_defaults(func=cmd_config)
    data = sub.add_parser("data", help="download a data set: Omniglot's official zips, checksummed")
    data.add_argument("dataset", choices=["omniglot"])
    data.add_argument("--root", help="folder to put it in (default: $RL_ALPHAMAML_OMNIGLOT, else the user data "
                                     "folder ~/.local/share/rl_alphamaml/omniglot, where runs find it)")
    data.add_argument("--url", help="a mirror of github.com/brendenlake/omniglot's python/ folder")
    data.set_defaults(func=cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as err:  # one line, whatever the message quotes (a --set value may hold a newline)
        message = str(err).replace("\r", "\\r").replace("\n", "\\n")
        print(f"rl-alphamaml: error: {message}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # a full disk where no write path says more (each of train's, evaluate's and compare's does)
        where = f" ({err.filename})" if err.filename else ""
        print(f"rl-alphamaml: error: {err.strerror}{where}: free space and run the command again", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started: stop without a traceback
        print("rl-alphamaml: interrupted (no checkpoint written for the unfinished iteration)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
