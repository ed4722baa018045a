"""Files written whole or not at all: a temporary beside the target, flushed to disk, renamed over it.

A process killed while writing (SIGKILL, power loss) leaves the previous file — or none — and at worst a
``.<name>.tmp-<pid>`` temporary, never a torn file. Everything the project keeps and reads back goes through
here: checkpoints, a run's config and trimmed ``metrics.jsonl``, evaluation results, the Omniglot split and
cache, and the results files that studies extend run by run.

Usage::

    write_text_atomic(run_dir / "eval" / "adaptation.json", json.dumps(result))
    write_atomic(path, lambda f: torch.save(state, f))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def temporary(path: Path, owner: str) -> Path:
    """Where ``path`` is written before its rename (``owner``: the writer's PID, or ``*`` to glob for any)."""
    return path.with_name(f".{path.name}.tmp-{owner}")


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write`` on a binary file that becomes ``path`` once it returns, in one rename; returns the path.

    The parent folder is created. If ``write`` raises, ``path`` is left as it was and the temporary removed. A
    failure that a file write caused (a full disk) is raised as that :class:`OSError`, even when ``write`` turned
    it into another exception on the way out (``torch.save``'s zip writer makes ``No space left on device`` a
    ``RuntimeError``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path, str(os.getpid()))
    try:
        with open(tmp, "wb") as f:
            try:
                write(f)
            except Exception as err:
                cause = os_error_behind(err)
                if cause is None or cause is err:
                    raise
                raise cause from None
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def os_error_behind(err: BaseException) -> OSError | None:
    """The :class:`OSError` that ``err`` is or was raised while handling (its ``__cause__`` / ``__context__``
    chain), if any: what a library's own exception hides when a write failed underneath it."""
    seen: set[int] = set()
    found: BaseException | None = err
    while found is not None and id(found) not in seen:
        if isinstance(found, OSError):
            return found
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    return None


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`write_atomic`."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda f: f.write(data))


def write_figure_atomic(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save a matplotlib figure to ``path`` with :func:`write_atomic`, in the format its suffix names (PNG by
    default), and close the figure whether or not the write succeeds."""
    from matplotlib import pyplot as plt

    try:
        return write_atomic(path, lambda f: fig.savefig(f, format=Path(path).suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
