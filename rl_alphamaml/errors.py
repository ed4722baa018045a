"""User-facing errors.

Every mistake a user can make (a malformed config, missing data, an unknown environment id, a corrupt
checkpoint, a run whose loss keeps going non-finite) raises a subclass of :class:`UserError`. The CLI
prints its message in one line and exits with status 2 instead of showing a traceback from deep inside.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input, reported as one clear message."""


class ConfigError(UserError, ValueError):
    """A config file or ``--set`` override is malformed, has an unknown key or an out-of-range value."""


class CheckpointError(UserError):
    """A checkpoint file is missing, corrupt, or not an rl_alphamaml checkpoint."""


class NonFiniteError(UserError):
    """Meta-training produced non-finite losses or gradients too many times in a row."""


class IterationFailedError(UserError):
    """A meta-iteration could not finish for a reason outside the learner (e.g. the simulator workers kept
    dying) and left the experiment as the previous iteration did: the runner saves that state first."""
