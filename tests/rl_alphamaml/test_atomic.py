"""Files written whole or not at all (``rl_alphamaml.atomic``): a failed or killed write leaves the old file."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pytest
import torch

from rl_alphamaml.atomic import temporary, write_atomic, write_text_atomic

if TYPE_CHECKING:
    from conftest import SmallDisk  # tests/conftest.py


def test_writes_the_file_and_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "results.json"
    assert write_text_atomic(path, "{\"a\": 1}\n") == path
    assert path.read_text() == "{\"a\": 1}\n"
    assert write_text_atomic(path, "é\n") == path  # replaces, UTF-8
    assert path.read_bytes() == "é\n".encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old\n")

    def fail(f: BinaryIO) -> None:
        f.write(b"half of the new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, fail)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_process_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old\n")
    child = ("import os, signal, sys\n"
             "from rl_alphamaml.atomic import write_atomic\n"
             "def write(f):\n"
             "    f.write(b'half of the new'); f.flush()\n"
             "    os.kill(os.getpid(), signal.SIGKILL)\n"
             "write_atomic(sys.argv[1], write)\n")
    done = subprocess.run([sys.executable, "-c", child, str(path)], check=False)
    assert done.returncode == -signal.SIGKILL
    assert path.read_text() == "old\n"
    leftover = temporary(path, "*").name
    assert [p.name for p in tmp_path.glob(leftover)], "the killed writer's temporary is where the glob finds it"


def test_a_full_disk_under_torch_save_is_the_os_error_and_leaves_the_old_file(small_disk: SmallDisk) -> None:
    # torch.save's zip writer turns "No space left on device" into a RuntimeError on its way out
    path = small_disk.path / "results" / "state.pt"
    write_atomic(path, lambda f: torch.save({"x": torch.zeros(10)}, f))
    old = path.read_bytes()
    small_disk.leave(2)
    with pytest.raises(OSError) as raised:
        write_atomic(path, lambda f: torch.save({"x": torch.zeros(100_000)}, f))
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == old
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]
