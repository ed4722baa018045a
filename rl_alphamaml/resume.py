"""What ``rl-alphamaml train --resume RUN_DIR --set KEY=VALUE`` may change, and how the change takes effect.

A resumed run must stay the run its folder describes: ``config.yaml`` never claims a value that is not in
effect. So every key is in one of three groups:

* **how the run executes** (:data:`EXECUTION_KEYS`, :data:`EXECUTION_SECTIONS`) — iterations, checkpoint
  cadence, threads, the device (checkpoints load on either), the sampler backend and its cluster, validation
  cadence, compute layout, where the data is, and the episodes sampled per task (``sampler.episodes``, the
  batch size: a larger batch for the later iterations of a run, as ``benchmarks/ant_paper.py`` does): applied
  as written. ``train.iterations`` may not fall below the
  checkpoint's iteration.
* **the rates** (:data:`RATE_KEYS`) — α and β live in the checkpoint, so a new ``inner.lr`` / ``outer.lr``
  *sets* them to the new value at the resumed iteration (e.g. lower rates after a divergence); new bounds
  clamp them and hold from then on; a new hyper-rate drives their next hypergradient steps. The trust region's
  radius, MAML-TRPO's β when it follows its hypergradient (``trpo.max_kl_mode: hd``), lives in the checkpoint
  too: new bounds (``trpo.max_kl_min`` / ``trpo.max_kl_max``) clamp it as the checkpoint loads and hold from
  then on, and a new ``trpo.hyper_lr`` drives its next steps (:data:`RADIUS_KEYS`; refused for a fixed radius).
  The bounds must still contain the radius's start, ``trpo.max_kl``, which a resume cannot change.
* **everything else** (the seed, the model, the task family, the algorithm) — refused with a message: it
  would make the rest of the run a different experiment than its first part. Start a new run instead.

Each applied change is printed, logged to TensorBoard's text tab and appended to ``RUN_DIR/changes.log``
with the iteration it took effect at.

A new rate is written three times: into the checkpoint the run resumes from, then ``config.yaml``, then
``changes.log``. The checkpoint goes first and carries what the other two are about to say
(:func:`folder_record`), so that a kill between the writes leaves a checkpoint from which the next resume
completes them (:func:`finish_interrupted`) before it reads the folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rl_alphamaml.atomic import write_text_atomic
from rl_alphamaml.config import config_yaml, flat_config
from rl_alphamaml.errors import UserError
from rl_alphamaml.meta import MetaOptimizer
from rl_alphamaml.rundir import RunDir

EXECUTION_KEYS = frozenset({
    "train.iterations", "train.checkpoint_every", "train.keep_checkpoints", "train.threads",
    "train.max_nonfinite_steps", "train.device", "data.root", "data.cache_dir",
})
EXECUTION_SECTIONS = ("sampler.", "compute.", "eval.")  # kind: rl's sampler; omniglot's compute and eval
RATE_KEYS = frozenset({
    "inner.lr", "outer.lr", "inner.lr_min", "inner.lr_max", "outer.lr_min", "outer.lr_max", "inner.hyper_lr",
    "outer.hyper_lr",
})
#: the adapted trust region radius's bounds and hyper-rate: the outer step applies them as the checkpoint loads
#: (:meth:`agents.outer_steps.TRPOStep.load_state_dict`), so the checkpoint itself need not change
RADIUS_KEYS = frozenset({"trpo.max_kl_min", "trpo.max_kl_max", "trpo.hyper_lr"})


@dataclasses.dataclass(frozen=True)
class Change:
    """One config value a resume changes."""

    key: str
    old: Any
    new: Any


def changes(saved: Any, requested: Any, checkpoint_iteration: int) -> list[Change]:
    """The changes from the run's ``saved`` config to the ``requested`` one (its ``--set`` values applied),
    refusing what a resume cannot change (:class:`~rl_alphamaml.errors.UserError`, every refused key named) and
    a new rate for a run with no iteration left to use it."""
    before, after = flat_config(saved), flat_config(requested)
    found = [Change(k, before.get(k), v) for k, v in after.items() if before.get(k) != v]
    refused = [c.key for c in found
               if c.key not in EXECUTION_KEYS | RATE_KEYS | RADIUS_KEYS and not c.key.startswith(EXECUTION_SECTIONS)]
    if refused:
        raise UserError(
            f"--set {', '.join(refused)}: cannot change when resuming (the checkpoint was trained with "
            f"{', '.join(f'{k}={before.get(k)!r}' for k in refused)}); start a new run with `rl-alphamaml train "
            "CONFIG --set …`. A resume may change the rates (inner.lr, outer.lr and their bounds, the trust "
            "region radius's bounds), "
            "train.iterations and how the run executes (threads, checkpoints, sampler backend, data location)")
    radius = [c.key for c in found if c.key in RADIUS_KEYS]
    if radius and after.get("trpo.max_kl_mode") != "hd":
        raise UserError(f"--set {', '.join(radius)}: the run's trust region radius is fixed (trpo.max_kl_mode: "
                        f"{after.get('trpo.max_kl_mode')!r}), so there is no adapted radius for these to bound or "
                        "drive; a fixed radius cannot change when resuming")
    for c in found:
        if c.key == "train.iterations" and c.new < checkpoint_iteration:
            raise UserError(f"--set train.iterations={c.new}: the run's newest checkpoint is already at iteration "
                            f"{checkpoint_iteration}")
    stateful, total = state_changes(found) + radius, after["train.iterations"]
    if stateful and checkpoint_iteration >= total:  # the new α/β (or radius bounds) would be recorded but never used
        raise UserError(f"--set {', '.join(stateful)}: the run already finished its {total} iterations, so no "
                        "iteration would run with the new value; raise train.iterations in the same command "
                        f"(e.g. --set train.iterations={total + 100})")
    return found


def apply_changes(changes: Sequence[Change], meta: MetaOptimizer, iteration: int) -> list[str]:
    """Put the rate changes into effect on the resumed ``meta`` (α, β); returns one line per change, as taking
    effect at ``iteration``, for :func:`record_changes`."""
    keys = {c.key: c.new for c in changes}
    alpha_before, beta_before = meta.alpha.mean(), meta.beta
    meta.set_rates(alpha=keys.get("inner.lr"), beta=keys.get("outer.lr"))
    lines = []
    for c in changes:
        line = f"iteration {iteration}: {c.key} {c.old!r} -> {c.new!r}"
        if c.key == "inner.lr":
            line += f" (alpha was {alpha_before:.6g}, now {meta.alpha.mean():.6g})"
        elif c.key == "outer.lr":
            line += f" (beta was {beta_before:.6g}, now {meta.beta:.6g})"
        elif c.key in RATE_KEYS:
            line += f" (alpha now {meta.alpha.mean():.6g}, beta {meta.beta:.6g})"
        lines.append(line)
    return lines


def record_changes(run_dir: Path, lines: Sequence[str]) -> None:
    """Add ``lines`` (from :func:`apply_changes`) to ``RUN_DIR/changes.log`` (rewritten atomically: a kill
    leaves the old log or the new one)."""
    if lines:
        write_text_atomic(RunDir(run_dir).changes, _changes_after(run_dir, lines))


def folder_record(run_dir: Path, config: Any, lines: Sequence[str]) -> dict[str, str]:
    """What ``config.yaml`` and ``changes.log`` say before and after a resume's changes (``config``, with the
    ``lines`` of :func:`apply_changes`) are written: saved in the checkpoint that holds the new rates."""
    return {"config_before": RunDir(run_dir).config.read_text(encoding="utf-8"), "config": config_yaml(config),
            "changes": _changes_after(run_dir, lines)}


def finish_interrupted(run_dir: Path, payload: dict[str, Any]) -> list[str]:
    """Complete the folder writes of a resume that a kill stopped after it saved its new rates into the
    checkpoint ``payload`` (:func:`folder_record`); returns the ``changes.log`` lines it wrote.

    It writes only while the folder is still between that resume's before and after — ``changes.log`` a part
    of what it was to become, ``config.yaml`` the one before or after — so the changes of later resumes
    (which complete this first, then append) always stand."""
    record = payload.get("record")
    if not record:
        return []
    folder = RunDir(run_dir)
    logged, wanted = _changes_after(run_dir, []), record["changes"]
    config = folder.config.read_text(encoding="utf-8")
    if logged == wanted or not wanted.startswith(logged) or config not in (record["config_before"], record["config"]):
        return []
    try:
        write_text_atomic(folder.config, record["config"])
        write_text_atomic(folder.changes, wanted)
    except OSError as err:
        raise UserError(f"cannot write to the run folder {run_dir}: {err.strerror or err}; the checkpoint still "
                        "holds what config.yaml and changes.log are to say: free space and run the same command "
                        "again") from None
    return wanted[len(logged):].splitlines()


def _changes_after(run_dir: Path, lines: Sequence[str]) -> str:
    """``changes.log``'s text with ``lines`` added."""
    changes = RunDir(run_dir).changes
    return (changes.read_text(encoding="utf-8") if changes.exists() else "") + "".join(f"{x}\n" for x in lines)


def state_changes(changes: Sequence[Change]) -> list[str]:
    """The keys among ``changes`` whose new value lives in the checkpoint (α and β: :data:`RATE_KEYS`)."""
    return [c.key for c in changes if c.key in RATE_KEYS]

