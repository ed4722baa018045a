"""An experiment kind, as the command line sees it: one typed record per ``kind:`` of config.

Each kind's module ends with ``KIND = ExperimentKind(...)``; :mod:`rl_alphamaml.cli` finds it through
``KIND_MODULES`` (a name and a module path: adding a kind is that module and one line there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class ExperimentKind:
    """A kind of experiment: its config class, how to build, evaluate and (optionally) film it.

    * ``build(config, run_dir)`` returns an experiment for :func:`rl_alphamaml.runner.train` (``run_dir`` may
      be ``None`` outside a run folder);
    * ``evaluate(experiment, tasks, steps, seed, **options)`` returns an
      :class:`~rl_alphamaml.evaluation.AdaptationResult` (options: what :attr:`evaluate_options` names);
    * ``videos(experiment, tasks, steps, seed, count, **options)``, when the kind has episodes to render,
      returns :class:`~rl_alphamaml.rendering.Clip` s for ``evaluate --video``.
    """

    name: str
    config: type
    build: Callable[[Any, Path | None], Any]
    evaluate: Callable[..., Any]
    eval_tasks: int
    eval_steps: int
    videos: Callable[..., Any] | None = None
    #: the ``evaluate`` options the kind takes beyond tasks, steps and seed (``episodes``, ``inner_lrs``)
    evaluate_options: tuple[str, ...] = ()
