"""A griffe extension for the API reference: the toolkit's docstrings are reStructuredText-flavoured Google style
(Sphinx roles, ``::`` literal blocks, doctests, simple tables); this turns those parts into Markdown before
mkdocstrings renders them. The docstrings themselves stay as they are (``help()`` and IDEs show them unchanged).

* ``:class:`~envs.base.TaskFamily``` (and ``:func:``, ``:meth:``, ``:mod:``, ``:data:``, ``:attr:``, ``:exc:``)
  → `` `TaskFamily` `` (the full path without ``~``);
* ``Example::`` → ``Example:`` (the indented block after it is a Markdown code block already);
* ``>>>`` doctest blocks and RST simple tables → fenced code blocks.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
TABLE_BORDER = re.compile(r"^\s*=+(\s+=+)+\s*$")


def _role(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def _fence(lines: list[str], language: str, indent: int) -> list[str]:
    """``lines`` as a fenced block at column ``indent`` (their own common indentation removed)."""
    own = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    pad = " " * indent
    return [f"{pad}```{language}", *(pad + line[own:] if line.strip() else "" for line in lines), f"{pad}```"]


def to_markdown(text: str) -> str:
    """The docstring ``text`` with its reStructuredText parts turned into Markdown (see the module docstring)."""
    text = ROLE.sub(_role, text)
    lines = text.splitlines()
    out: list[str] = []
    context = 0  # indentation of the last line of prose: a block after "Example::" is indented below it
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if line.lstrip().startswith(">>>"):  # a doctest block runs to the next blank line
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            out += _fence(lines[i:j], "pycon", min(indent, context))
            i = j
        elif TABLE_BORDER.match(line):  # an RST simple table: three border lines
            borders, j = 0, i
            while j < len(lines) and borders < 3:
                borders += bool(TABLE_BORDER.match(lines[j]))
                j += 1
            out += _fence(lines[i:j], "text", indent)
            i = j
        else:
            if line.strip():
                context = indent
            out.append(re.sub(r"(\S)::$", r"\1:", line))
            i += 1
    return "\n".join(out)


class RestructuredTextToMarkdown(griffe.Extension):
    """Rewrite every docstring griffe loads with :func:`to_markdown`."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Every member of a loaded package."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """The package itself (``on_object`` sees only its members)."""
        self.on_object(obj=pkg)
