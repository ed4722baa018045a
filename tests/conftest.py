"""``small_disk``: a real file system that fills up — a tmpfs mounted for the test, resized to leave a few pages.

Mounting needs root (CI runs the tests as root); elsewhere the tests that use it are skipped with the reason.

Tests of the Meta-World families (a parameter naming one, e.g. over ``envs.FAMILY_IDS``, or the marker
``metaworld``) are skipped, with the reason, where the optional metaworld package cannot run
(``pip install -e ".[metaworld]"``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from envs.base import MissingDependencyError
from envs.metaworld import import_metaworld


def _metaworld_missing() -> str | None:
    try:
        import_metaworld()
    except MissingDependencyError as err:
        return str(err)
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "metaworld: needs the metaworld package (skipped without it)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = _metaworld_missing()
    if missing is None:
        return
    skip = pytest.mark.skip(reason=f"metaworld is not usable here: {missing}")
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.get_closest_marker("metaworld") or any("MetaWorld" in str(v) for v in params.values()):
            item.add_marker(skip)

PAGE = os.sysconf("SC_PAGESIZE")  # tmpfs counts whole pages: a file of 1 byte takes one
ROOMY = 256 * 1024 * 1024


class SmallDisk:
    """A tmpfs at :attr:`path`; :meth:`leave` sizes it to what is used plus a number of free pages."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def used(self) -> int:
        """Bytes in use (whole pages)."""
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def free_pages(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize // PAGE

    def resize(self, size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True, capture_output=True)

    def leave(self, pages: int) -> None:
        """Make the disk full but for ``pages`` free pages."""
        self.resize(self.used() + pages * PAGE)
        assert self.free_pages() == pages

    def make_room(self) -> None:
        """Space is back: the size it was mounted with."""
        self.resize(ROOMY)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A tmpfs of :data:`ROOMY` bytes mounted in ``tmp_path`` for the test, unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is tested on a tmpfs, and mounting one needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={ROOMY}", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    (mount / "other-files").write_bytes(b"x")  # a page in use: a size of 0 pages would mean no limit to tmpfs
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=True)
