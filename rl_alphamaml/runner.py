"""The meta-training loop every experiment kind shares: run folders, logging, checkpoints, resume, Ctrl-C.

An experiment implements :class:`Experiment` — one meta-iteration at a time, plus its state — and
:func:`train` does the rest:

* a fresh run creates ``runs/<experiment>-<timestamp>/`` (or ``--run-dir``), saves the resolved
  ``config.yaml`` and the hyperparameters as a TensorBoard text table;
* each iteration's scalars go to TensorBoard and ``metrics.jsonl``, with a progress display;
* a checkpoint is written every ``train.checkpoint_every`` iterations and at the end, atomically;
* ``resume=True`` continues from the newest checkpoint: randomness is drawn from per-iteration streams
  (:mod:`rl_alphamaml.seeding`), so the resumed run logs the same numbers as an uninterrupted one;
* Ctrl-C (SIGINT) finishes the current iteration, saves a checkpoint and stops (exit status 130);
* too many non-finite meta-steps in a row save the last good state and end with a clear message;
* the run folder's lock is held throughout (:mod:`rl_alphamaml.runlock`): one ``train`` at a time;
* a write that fails (a full disk) ends the run with one message naming the file and the newest checkpoint
  (:func:`train` says what is saved first).
"""

from __future__ import annotations

import datetime as dt
import errno
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from rl_alphamaml import runlock
from rl_alphamaml.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    remove_stale_temporaries,
    restore_state,
    save_checkpoint,
)
from rl_alphamaml.config import flat_config, hparam_table, save_config
from rl_alphamaml.errors import CheckpointError, IterationFailedError, NonFiniteError, UserError
from rl_alphamaml.logging import RunLogger, read_metrics
from rl_alphamaml.meta import MetaOptimizer
from rl_alphamaml.resume import Change, apply_changes, folder_record, record_changes, state_changes
from rl_alphamaml.rundir import RunDir, file_in_the_way


class Experiment(Protocol):
    """What :func:`train` needs from an experiment kind."""

    meta: MetaOptimizer  # θ, α and β (a resume's rate changes are applied to it)

    def train_iteration(self, iteration: int, logger: RunLogger) -> dict[str, float]:
        """Run meta-iteration ``iteration`` (1-based) and return the scalars to log."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: model, meta-optimizer state, counters."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    # Optional: ``hparam_metrics`` (the scalar tags TensorBoard's HPARAMS tab shows per run, default
    # DEFAULT_HPARAM_METRICS) and ``close()`` (release workers; called when training ends).


DEFAULT_HPARAM_METRICS = ("loss/pre_adapt", "loss/post_adapt", "meta/alpha", "meta/beta")


def set_threads(config: Any) -> None:
    """Apply ``train.threads``: on small models one thread avoids OpenMP spin contention."""
    if config.train.threads > 0:
        import torch

        torch.set_num_threads(config.train.threads)


def default_run_dir(experiment: str, root: str | Path = "runs") -> Path:
    """``root/<experiment>-<timestamp>``; ``experiment`` must be a plain name, so the run stays inside ``root``."""
    if not experiment or Path(experiment).name != experiment or experiment in (".", ".."):
        raise UserError(f"experiment: {experiment!r} must be a plain name (no folders); "
                        "use --run-dir to put the run elsewhere")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{experiment}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{experiment}-{stamp}-{n}"
    return path


class _StopFlag:
    """Turns the first SIGINT (Ctrl-C) or SIGTERM (what Slurm, Kubernetes and ``timeout`` send) into a request
    to stop after the current iteration with a checkpoint; a second one stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # a second signal stops at once
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum
        name = "interrupt" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{name}: finishing this iteration and saving a checkpoint (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    @property
    def exit_status(self) -> int:
        """The shell's status for the signal that stopped the run: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + int(self.signum)

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


class _Progress:
    """A tqdm bar on a terminal; otherwise a status line about every 5 % of the run."""

    def __init__(self, total: int, start: int, desc: str) -> None:
        self.total = total
        self.every = max(1, total // 20)
        self.started = time.perf_counter()
        self.first = start
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start - 1, desc=desc, dynamic_ncols=True, mininterval=0.5)

    def update(self, iteration: int, scalars: Mapping[str, float]) -> None:
        shown = {k: f"{v:.4g}" for k, v in list(scalars.items())[:4]}
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)
        elif iteration % self.every == 0 or iteration == self.total:
            rate = (iteration - self.first + 1) / max(1e-9, time.perf_counter() - self.started)
            items = " ".join(f"{k}={v}" for k, v in shown.items())
            print(f"[{iteration}/{self.total}] {rate:.2f} it/s {items}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _discard_unstarted_run(path: Path) -> None:
    """Remove what a fresh run wrote before it failed to start, so that the folder can be used again."""
    if not list_checkpoints(path):
        for p in RunDir(path).start_files():
            p.unlink(missing_ok=True)


def make_run_dir(config: Any, run_dir: str | Path | None) -> Path:
    """Create the folder of a new run (``run_dir``, else :func:`default_run_dir`) and return it."""
    path = Path(run_dir) if run_dir is not None else default_run_dir(config.experiment)
    blocking = file_in_the_way(path)
    if blocking is not None:
        raise UserError(f"--run-dir {path}: {blocking} is a file, not a folder; choose another --run-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the run folder {path}: {err.strerror or err}") from None
    return path


def prepare_run_dir(config: Any, run_dir: str | Path | None) -> Path:
    """Create a fresh run folder and save the resolved config in it (holding its lock while it does:
    :mod:`rl_alphamaml.runlock`)."""
    path = make_run_dir(config, run_dir)
    run = RunDir(path)
    with runlock.hold(path):
        if list_checkpoints(path) or run.config.exists():
            raise UserError(f"{path} already holds a run; continue it with `rl-alphamaml train --resume {path}` "
                            "or choose another --run-dir")
        stray = run.start_files()
        if stray:  # e.g. metrics.jsonl of a run whose config was deleted: a fresh run would overwrite it
            raise UserError(f"{path} holds files of another run ({', '.join(p.name for p in stray)}); "
                            "choose another --run-dir or move them away")
        try:
            save_config(config, run.config)
        except OSError as err:
            raise UserError(f"cannot write {run.config}: {err.strerror or err}; nothing was written: free space "
                            "and run the same command again") from None
    return path


def train(
    config: Any,
    build: Callable[[Any, Path], Experiment],
    run_dir: Path,
    resume: bool = False,
    changes: Sequence[Change] = (),
    completed: Sequence[str] = (),
) -> int:
    """Meta-train ``build(config, run_dir)`` for ``config.train.iterations``; returns the exit status.

    The run folder's lock is held throughout (:mod:`rl_alphamaml.runlock`). A fresh run that cannot start
    (missing data, a full disk) leaves no ``config.yaml``, metrics or events behind, so the same ``--run-dir``
    can be used again. ``changes`` are a resume's ``--set`` values (:func:`rl_alphamaml.resume.changes`): once
    the checkpoint is loaded they are put into effect and recorded (:func:`rl_alphamaml.resume.apply_changes`)
    and the run's config is rewritten. A change to α or β is first saved into the checkpoint it resumes from, so
    that a kill before the next checkpoint cannot leave the folder claiming a rate the run would not continue
    with (on a finished run :func:`rl_alphamaml.resume.changes` refuses it); a kill right after that save is
    completed by the next resume (:func:`rl_alphamaml.resume.finish_interrupted`), whose ``completed`` lines go
    to TensorBoard with its own.

    A write that fails (a full disk) ends the run with one :class:`~rl_alphamaml.errors.UserError` naming the
    file and the newest checkpoint (:func:`_write_failed`): a failed checkpoint is first retried once after
    removing the checkpoints ``train.keep_checkpoints`` would remove after it (:func:`_save`); a failed
    TensorBoard write still saves the iteration's checkpoint; a failed ``metrics.jsonl`` line does not (the record
    would lack that iteration for good), so the resumed run trains it again.
    """
    with runlock.hold(run_dir):
        return _train(config, build, run_dir, resume, changes, completed)


def _again(newest: int, done: int) -> str:
    if done <= newest:
        return ""
    if done == newest + 1:
        return f" (it trains iteration {done} again)"
    return f" (it trains iterations {newest + 1}–{done} again)"


def _write_failed(run_dir: Path, resume: bool, done: int, unchanged: bool = False) -> str:
    """What is safe after a failed write, and how to go on: the newest checkpoint (``done``: the last iteration
    trained in memory, which a resume trains again when it is newer; ``unchanged``: a resume's ``--set`` values
    are not in effect, so the same command is the one to run again) or, for a fresh run without one, that its
    files were removed so that the same command starts it again."""
    found = list_checkpoints(run_dir)
    if not found:
        if not resume:
            _discard_unstarted_run(run_dir)
        return ("no checkpoint was written and the run's files were removed: free space and run the same command "
                "again")
    newest, path = found[-1]
    if unchanged:
        return (f"the newest checkpoint is {path}, the --set values are not in effect: free space and run the same "
                "command again")
    return (f"the newest checkpoint is {path}: free space and continue with `rl-alphamaml train --resume {run_dir}`"
            f"{_again(newest, done)}")


def _prunable(run_dir: Path, keep: int, need: int) -> list[Path]:
    """The checkpoints a save would prune after it (``keep``; never the newest), if removing them first frees
    the ``need`` bytes it lacks; else none."""
    found = [path for _, path in list_checkpoints(run_dir)]
    if keep <= 0 or len(found) < 2:
        return []
    early = found[:max(0, len(found) - keep + 1)][:len(found) - 1]
    freed = sum(p.stat().st_blocks * 512 for p in early)
    return early if early and shutil.disk_usage(run_dir).free + freed >= need else []


def _save(run_dir: Path, kind: str, iteration: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``iteration``'s checkpoint and prune to ``keep``. On a full disk, once: remove the older checkpoints
    that this save would prune anyway (never the newest; only if that makes room for one more checkpoint of the
    newest one's size) and write it again. Raises :class:`OSError` if it cannot be written."""
    path = checkpoint_path(run_dir, iteration)
    try:
        save_checkpoint(path, kind, iteration, state)
    except OSError as err:
        found = list_checkpoints(run_dir)
        need = found[-1][1].stat().st_blocks * 512 if found else 0
        early = _prunable(run_dir, keep, need) if err.errno == errno.ENOSPC else []
        if not early:
            raise
        for old in early:
            old.unlink(missing_ok=True)
        print(f"disk full: removed {', '.join(p.name for p in early)} before writing {path.name} to make room "
              f"(train.keep_checkpoints={keep} removes them after it)", file=sys.stderr)
        save_checkpoint(path, kind, iteration, state)
    prune_checkpoints(run_dir, keep)
    return path


def _train(config: Any, build: Callable[[Any, Path], Experiment], run_dir: Path, resume: bool,
           changes: Sequence[Change], completed: Sequence[str]) -> int:
    kind = config.kind
    set_threads(config)
    if resume:
        for stale in remove_stale_temporaries(run_dir):
            print(f"removed {stale}, left by a write that was killed", file=sys.stderr)
    try:
        experiment = build(config, run_dir)
    except (UserError, OSError) as err:
        if not resume:
            _discard_unstarted_run(run_dir)
        if isinstance(err, OSError):  # e.g. the Omniglot split the run keeps in its folder
            raise UserError(f"cannot write to the run folder {run_dir}: {err.strerror or err}; "
                            f"{_write_failed(run_dir, resume, 0)}") from None
        raise
    payload = None
    total = config.train.iterations
    if resume:
        try:
            latest = latest_checkpoint(run_dir)
            payload = load_checkpoint(latest, kind=kind)
            restore_state(experiment, payload, latest)
            read_metrics(run_dir)  # a damaged record is refused before the folder is touched
        except UserError:
            close_experiment(experiment)
            raise
    start = 1
    if payload is not None:
        start = int(payload["iteration"]) + 1
        print(f"resuming {run_dir} after iteration {start - 1}", file=sys.stderr)
    folder = RunDir(run_dir)
    writing, recorded = "", not changes
    try:
        changed = apply_changes(changes, experiment.meta, start) if changes else []
        if state_changes(changes):
            # α and β live in the checkpoint: the resumed state with its new rates replaces the one it came from
            # before config.yaml and changes.log say the change is in effect, and carries what they will say.
            writing = f"the new rates into {checkpoint_path(run_dir, start - 1)}"
            save_checkpoint(checkpoint_path(run_dir, start - 1), kind, start - 1, experiment.state_dict(),
                            record=folder_record(run_dir, config, changed))
        if changes:
            writing = str(folder.config)
            save_config(config, folder.config)
            writing = str(folder.changes)
            record_changes(run_dir, changed)
            recorded = True
        for line in changed:
            print(f"resume: {line}", file=sys.stderr)
        if start > total:
            print(f"{run_dir} already finished its {total} iterations (raise train.iterations to continue)",
                  file=sys.stderr)
            close_experiment(experiment)
            return 0
        writing = f"the logs in {run_dir}"
        logger = RunLogger(run_dir, start_iteration=start)  # its write failures: stop_if_a_log_failed
    except OSError as err:
        close_experiment(experiment)
        raise UserError(f"cannot write {writing}: {err.strerror or err}; "
                        f"{_write_failed(run_dir, resume, start - 1, unchanged=not recorded)}") from None

    def stop_if_a_log_failed(done: int) -> None:
        """End the run if ``metrics.jsonl`` or the TensorBoard events could not be written (``done``: the last
        iteration trained); after a TensorBoard failure, save ``done``'s checkpoint first."""
        if not logger.failures:
            return
        err = next(iter(logger.failures.values()))
        what = (f"cannot write {' or '.join(logger.failures)} in {run_dir}"
                + (f" at iteration {done}" if done >= start else "") + f": {err.strerror or err}")
        if RunLogger.METRICS not in logger.failures and done >= start:
            try:
                path = _save(run_dir, kind, done, experiment.state_dict(), config.train.keep_checkpoints)
            except OSError as save_err:
                what += f", nor the checkpoint of iteration {done} ({save_err.strerror or save_err})"
            else:
                raise UserError(f"{what}; saved the checkpoint of iteration {done}, {path}: free space and "
                                f"continue with `rl-alphamaml train --resume {run_dir}`")
        raise UserError(f"{what}; {_write_failed(run_dir, resume, done)}")

    def checkpoint(iteration: int) -> Path:
        try:
            return _save(run_dir, kind, iteration, experiment.state_dict(), config.train.keep_checkpoints)
        except OSError as err:
            raise CheckpointError(f"cannot write the checkpoint of iteration {iteration} in {run_dir}: "
                                  f"{err.strerror or err}; {_write_failed(run_dir, resume, iteration)}") from None

    progress = _Progress(total, start, config.experiment)
    status = 0
    try:
        if start == 1:
            logger.text("hyperparameters", hparam_table(config))
            logger.hparams(flat_config(config), getattr(experiment, "hparam_metrics", DEFAULT_HPARAM_METRICS))
        if completed or changed:
            logger.text("config changes", "\n\n".join([*completed, *changed]), start)
        stop_if_a_log_failed(start - 1)
        with _StopFlag() as stop:
            for iteration in range(start, total + 1):
                try:
                    scalars = experiment.train_iteration(iteration, logger)
                except (NonFiniteError, IterationFailedError) as err:
                    path = checkpoint(iteration - 1) if iteration > 1 else None
                    saved = f"; the last good state is in {path}" if path else ""
                    raise type(err)(f"iteration {iteration}: {err}{saved}") from None
                logger.scalars(iteration, scalars)
                progress.update(iteration, scalars)
                stop_if_a_log_failed(iteration)
                if stop.requested:
                    path = checkpoint(iteration)
                    print(f"stopped after iteration {iteration}; checkpoint {path}\n"
                          f"continue with: rl-alphamaml train --resume {run_dir}", file=sys.stderr)
                    status = stop.exit_status
                    break
                if iteration % config.train.checkpoint_every == 0 or iteration == total:
                    checkpoint(iteration)
    finally:
        progress.close()
        logger.close()
        close_experiment(experiment)
    if status == 0:
        print(f"done: {run_dir}", file=sys.stderr)
    return status


def close_experiment(experiment: Experiment) -> None:
    """Release what an experiment holds outside this process (e.g. Ray sampler workers), if it says how."""
    close = getattr(experiment, "close", None)
    if callable(close):
        close()
