"""The import arrows of docs/architecture.md, enforced: each package is imported in a fresh interpreter with the
packages it must not reach blocked, so a wrong arrow fails here rather than in a review."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (package whose every module is imported, modules it must not import, modules of it exempt)
CONTRACTS = [
    ("envs", ["torch", "rl_alphamaml", "agents"], []),
    ("rl_alphamaml.meta", ["yaml", "rl_alphamaml.config", "rl_alphamaml.runner", "rl_alphamaml.cli", "agents",
                           "envs"], []),
    ("agents", ["rl_alphamaml.cli", "rl_alphamaml.runner"], []),
    ("rl_alphamaml", ["agents"], ["rl_alphamaml.cli", "rl_alphamaml.__main__"]),  # only the CLI reaches agents
]

SCRIPT = """
import importlib, importlib.abc, pkgutil, sys
package, forbidden, exempt = {package!r}, {forbidden!r}, {exempt!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == f or name.startswith(f + ".") for f in forbidden):
            raise ImportError(f"{{name}} is imported, which {{package}} must not do")
        return None

sys.meta_path.insert(0, Block())
root = importlib.import_module(package)
names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
for name in names:
    if name not in exempt:
        importlib.import_module(name)
print(len(names))
"""


@pytest.mark.parametrize(("package", "forbidden", "exempt"), CONTRACTS, ids=[c[0] for c in CONTRACTS])
def test_import_contract(package: str, forbidden: list[str], exempt: list[str]) -> None:
    script = SCRIPT.format(package=package, forbidden=forbidden, exempt=exempt)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]
    assert int(done.stdout.strip()) > 1
