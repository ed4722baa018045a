"""Config fields with a range and a meaning: :func:`ranged`, for every config dataclass.

Its own module, free of YAML and of the config loader, so that the core (:mod:`rl_alphamaml.meta`) can declare its
settings without depending on how configs are read (:mod:`rl_alphamaml.config` does that).
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: the largest config seed (it also seeds torch's global generator)
MAX_SEED = 2**32 - 1


def ranged(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    doc: str = "",
) -> Any:
    """A dataclass field with an allowed numeric range ``[min, max]`` (``(min, max]`` if ``min_exclusive``)."""
    meta = {"min": min, "max": max, "min_exclusive": min_exclusive, "doc": doc}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
