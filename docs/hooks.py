"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks: [docs/hooks.py]``).

* The configuration reference is generated at build time: a page line ``<!-- config-reference: KIND -->`` becomes
  the table ``rl-alphamaml config KIND --markdown`` prints (:func:`rl_alphamaml.cli.config_markdown`), so the
  site lists every key of every kind with its type, default, range and meaning, never a copy of them.
* Figures that live beside the results they belong to — ``benchmarks/results/*.png`` and the zoo's
  ``zoo/<entry>/eval/`` GIFs and plots — are added to the site under ``assets/results/`` and ``assets/zoo/``.
* ``pymdownx.snippets`` reads the included files (``examples/*.py``) relative to the repository root, wherever
  ``mkdocs`` is started from, and the project's own packages are imported from this checkout.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]
CONFIG_REFERENCE = re.compile(r"^<!-- config-reference: (\w+) -->$", flags=re.MULTILINE)

#: repository folder → where its files appear in the site, and which of them
ASSETS = {
    "benchmarks/results": ("assets/results", ("*.png",)),
    "zoo": ("assets/zoo", ("*/eval/adaptation.png", "*/eval/videos/*.gif")),
}


def on_config(config: MkDocsConfig, **kwargs: Any) -> MkDocsConfig:
    """Import the project from this checkout; snippets are read from the repository root."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    config.mdx_configs.setdefault("pymdownx.snippets", {})["base_path"] = [str(ROOT)]
    return config


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    """Add the benchmark figures and the zoo's evaluation plots and GIFs to the site."""
    for folder, (site_folder, patterns) in ASSETS.items():
        for path in sorted(p for pattern in patterns for p in (ROOT / folder).glob(pattern)):
            uri = f"{site_folder}/{path.relative_to(ROOT / folder).as_posix()}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def config_reference(markdown: str) -> str:
    """``markdown`` with every ``<!-- config-reference: KIND -->`` line replaced by KIND's key table."""
    from rl_alphamaml.cli import KIND_MODULES, config_markdown

    def table(match: re.Match[str]) -> str:
        kind = match.group(1)
        if kind not in KIND_MODULES:
            raise ValueError(f"config-reference: unknown kind {kind!r}; the kinds are {', '.join(KIND_MODULES)}")
        return config_markdown(kind)

    return CONFIG_REFERENCE.sub(table, markdown)


def on_page_markdown(markdown: str, page: Page, **kwargs: Any) -> str:
    """Generate the configuration reference where a page asks for it."""
    return config_reference(markdown)
