"""``rl-alphamaml data omniglot``: fetch the official Omniglot zips, checked, into the user data folder.

The two zips of Lake, Salakhutdinov & Tenenbaum's release (github.com/brendenlake/omniglot, ``python/``) are
downloaded with a progress bar, checked against the MD5 sums torchvision also uses, and written atomically:
a download goes to a hidden ``.part`` file in the same folder and is renamed only once complete and
verified, so a failure, a wrong checksum or Ctrl-C never leaves a partial or wrong zip behind. A zip that is
already there is kept when its checksum is the official one, or when it is otherwise a readable Omniglot
zip (a local copy rebuilt from another source, say): the loader accepts any valid copy, only downloads are
held to the official sums.

The folder is ``--root``, else ``$RL_ALPHAMAML_OMNIGLOT``, else :func:`default_data_dir`
(``$XDG_DATA_HOME/rl_alphamaml/omniglot`` or ``~/.local/share/rl_alphamaml/omniglot``) — the folder that
:func:`rl_alphamaml.supervised.omniglot_data.resolve_root` falls back to, so a config needs no ``data.root``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from rl_alphamaml.errors import UserError

BASE_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
#: the official zips and their MD5 sums (as torchvision's ``Omniglot`` dataset checks them)
FILES = {
    "images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811",
}
CHUNK = 1 << 16


ENV_ROOT = "RL_ALPHAMAML_OMNIGLOT"
"""Environment variable naming the Omniglot root folder when no root is given (config: ``data.root``)."""


def data_folder(root: str | os.PathLike[str] | None = None) -> Path:
    """The Omniglot folder: ``root``, else ``$RL_ALPHAMAML_OMNIGLOT``, else :func:`default_data_dir`."""
    if root is None or str(root) == "":
        root = os.environ.get(ENV_ROOT) or default_data_dir()
    return Path(root).expanduser().absolute()


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/rl_alphamaml/omniglot``, or ``~/.local/share/rl_alphamaml/omniglot``."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base.absolute() / "rl_alphamaml" / "omniglot"


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def usable(path: Path, name: str) -> bool:
    """Whether ``path`` is a zip the loader can read for ``name``: the official file, or any readable zip whose
    entries are under ``images_<set>/``."""
    if not path.is_file():
        return False
    if md5(path) == FILES[name]:
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            top = name.removesuffix(".zip") + "/"
            return any(entry.startswith(top) for entry in archive.namelist()) and archive.testzip() is None
    except (zipfile.BadZipFile, OSError):
        return False


def _fetch(url: str, target: Path, expected_md5: str, progress: bool) -> None:
    """Download ``url`` to ``target`` through a ``.part`` file, checking its MD5 before the rename."""
    part = target.with_name(f".{target.name}.part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=target.name, file=sys.stderr)
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    if bar is not None:
                        bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_md5:
            raise UserError(f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, expected {expected_md5}); "
                            "nothing was kept — try again, or download it by hand")
        os.replace(part, target)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"cannot download {url}: {reason} (offline? the zips can also be copied into "
                        f"{target.parent} by hand)") from None
    except OSError as err:
        raise UserError(f"cannot write {target}: {err.strerror or err}; no part of it was kept (zips already in "
                        f"{target.parent} are untouched): free space and run the command again") from None
    finally:  # a failure, a mismatch or Ctrl-C: no partial file
        part.unlink(missing_ok=True)


def download_omniglot(root: str | os.PathLike[str] | None = None, base_url: str = BASE_URL,
                      progress: bool = True) -> Path:
    """Make ``root`` (see the module docstring for the default) hold both Omniglot zips; returns the folder.

    Zips already there and usable are kept (nothing is downloaded); the others are downloaded and verified.
    """
    folder = data_folder(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {folder}: {err.strerror or err}") from None
    for name, expected in FILES.items():
        target = folder / name
        if usable(target, name) or (folder / name.removesuffix(".zip")).is_dir():
            print(f"{target}: already there", file=sys.stderr)
            continue
        _fetch(base_url + name, target, expected, progress)
        print(f"{target}: downloaded, MD5 {expected} verified", file=sys.stderr)
    return folder
