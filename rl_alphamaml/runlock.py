"""One process at a time in a run folder: ``RUN_DIR/.lock``.

``rl-alphamaml train`` (a new run or ``--resume``) holds the lock from before it reads the folder until its last
write; a second ``train`` of the same folder is refused with one line naming the PID and host that hold it.
``evaluate`` and ``compare`` take no lock: they read a run in use and write only under its ``eval/``.

How it works, and why this is enough:

* The lock is an exclusive :func:`fcntl.flock` on ``RUN_DIR/.lock``, taken without waiting. The kernel drops it
  when its process ends, however it ends (SIGKILL included); on NFS the server drops it when the client's lease
  runs out (a lost node: about 90 s). A lock file that nobody holds was therefore left by a process that is gone:
  it is taken over, with a line saying whose it was.
* The file holds the holder's PID, host and start time (JSON), for that line and for the refusal, and the holder
  renews its modification time every :data:`HEARTBEAT` seconds (``os.utime``, which needs no free space).
* Where ``flock`` does not reach across machines (NFS mounted with ``local_lock``, BeeGFS without global file
  locks, Lustre with ``localflock``), a process on another host can take the flock of a run that is in use. So a
  lock file of another host is taken over only once its heartbeat is :data:`STALE_AFTER` seconds old (clocks
  in step, as NTP keeps them); younger, the run is refused as in use. On a file system without ``flock`` at all
  the same checks are made from the file alone (a PID on this host must be gone), with a warning that two
  commands started at the same instant are not told apart.
* The holder removes the file when it ends: normally, with an error, on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rl_alphamaml.errors import UserError

LOCK_FILE = ".lock"
HEARTBEAT = 10.0
"""Seconds between the holder's renewals of the lock file's modification time."""
STALE_AFTER = 60.0
"""A lock file of another host whose modification time is older than this is taken over."""
NAME_WAIT = 2.0
"""Seconds a refused process waits for the holder of the lock to write its name into the lock file."""


class RunInUseError(UserError):
    """The run folder is held by another process."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds (or held) a run folder's lock: what its ``.lock`` file says."""

    pid: int
    host: str
    started: float  # time.time() when the lock was taken
    proc_start: str = ""  # the process's start time in /proc (tells a reused PID apart), "" where unknown

    def describe(self) -> str:
        since = dt.datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M:%S")
        return f"PID {self.pid} on host {self.host} (since {since})"

    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self) -> bool:
        """Whether this host still runs the process (only meaningful for :meth:`on_this_host`)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process
            return True
        return not self.proc_start or _proc_start(self.pid) in ("", self.proc_start)


def _proc_start(pid: int) -> str:
    """Field 22 of ``/proc/PID/stat`` (the start time in clock ticks since boot), "" where there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _read(fd: int) -> Holder | None:
    """The holder a lock file names; None for an empty or unreadable one."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode())
        return Holder(int(data["pid"]), str(data["host"]), float(data["started"]), str(data.get("proc_start", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` is still the file open as ``fd`` (its holder may have removed it in between)."""
    try:
        mine, now = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


def _heartbeat_age(fd: int) -> float:
    return max(0.0, time.time() - os.fstat(fd).st_mtime)


class RunLock:
    """The lock of one run folder, held by this process; :func:`hold` takes and releases it."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self.fd = -1
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunInUseError`; print a line when a stale lock is taken over."""
        locked = True
        for _ in range(10):  # a file removed by its holder between our open and our flock: open the new one
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise UserError(f"cannot create the lock file {self.path}: {err.strerror or err}") from None
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder_of_taken_lock()
                os.close(self.fd)
                raise RunInUseError(self._in_use(holder)) from None
            except OSError as err:  # ENOLCK, EOPNOTSUPP: this file system has no locks
                locked = False
                print(f"rl-alphamaml: warning: {self.path}: no file locks on this file system "
                      f"({err.strerror or err}); checking the lock file alone", file=sys.stderr)
            if not locked or _same_file(self.fd, self.path):
                break
            os.close(self.fd)
        else:
            raise RunInUseError(f"{self.run_dir}: its lock file keeps being replaced; another process is using it")
        try:
            self._take_over(_read(self.fd), locked)
            self._write()
        except BaseException:
            os.close(self.fd)
            raise
        self._beat = threading.Thread(target=self._renew, name=f"heartbeat {self.path}", daemon=True)
        self._beat.start()

    def _holder_of_taken_lock(self) -> Holder | None:
        """Who holds the flock this process was refused. A holder writes its name just after it takes the flock, so
        the file may still be empty, or name the earlier holder whose stale lock it is taking over: wait up to
        :data:`NAME_WAIT` seconds for a live holder's name (then None: "another process")."""
        deadline = time.monotonic() + NAME_WAIT
        while True:
            holder = _read(self.fd)
            live = holder is not None and (not holder.on_this_host() or holder.alive())
            if live or time.monotonic() >= deadline:
                return holder if live else None
            time.sleep(0.02)

    def _in_use(self, holder: Holder | None, detail: str = "") -> str:
        who = holder.describe() if holder is not None else "another process"
        return (f"{self.run_dir} is in use by {who}{detail}: wait until it ends or stop it (`evaluate` and "
                "`compare` may read it meanwhile)")

    def _take_over(self, previous: Holder | None, locked: bool) -> None:
        """Refuse a lock file whose holder may still run; otherwise say whose stale lock this takes over."""
        if previous is None:
            return
        if previous.on_this_host():
            if not locked and previous.alive():
                raise RunInUseError(self._in_use(previous))
            print(f"{self.run_dir}: took over the lock of {previous.describe()}, which is no longer running",
                  file=sys.stderr)
            return
        age = _heartbeat_age(self.fd)
        if age < STALE_AFTER:
            raise RunInUseError(self._in_use(previous, f", whose heartbeat is {age:.0f} s old (a lock left by a lost "
                                                       f"node is taken over once it is {STALE_AFTER:.0f} s old)"))
        print(f"{self.run_dir}: took over the lock of {previous.describe()}: no heartbeat for {age:.0f} s (the "
              "process or its node is gone)", file=sys.stderr)

    def _write(self) -> None:
        me = Holder(os.getpid(), socket.gethostname(), time.time(), _proc_start(os.getpid()))
        data = json.dumps(dataclasses.asdict(me)).encode()
        try:
            os.ftruncate(self.fd, 0)
            if os.pwrite(self.fd, data, 0) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as err:
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise UserError(f"cannot write the lock file {self.path}: {err.strerror or err}; nothing in "
                            f"{self.run_dir} was changed: free space and run the command again") from None

    def _renew(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            with contextlib.suppress(OSError):
                os.utime(self.fd)

    def release(self) -> None:
        """Remove the lock file and drop the lock (in that order, so that no one takes a file being removed)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        with contextlib.suppress(OSError):
            if _same_file(self.fd, self.path):
                self.path.unlink()
        os.close(self.fd)


_HELD: set[Path] = set()


@contextlib.contextmanager
def hold(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the ``with`` block (the folder must exist). A hold inside another of the same
    folder in the same process shares it: the CLI holds the lock around :func:`rl_alphamaml.runner.prepare_run_dir`
    and :func:`rl_alphamaml.runner.train`, which hold it themselves when called on their own."""
    key = Path(run_dir).resolve()
    if key in _HELD:
        yield
        return
    lock = RunLock(Path(run_dir))
    lock.acquire()
    _HELD.add(key)
    try:
        yield
    finally:
        _HELD.discard(key)
        lock.release()


def holder(run_dir: str | os.PathLike[str]) -> Holder | None:
    """The process that holds ``run_dir`` now, judged from its lock file without locking it (a reader's check):
    a holder on this host whose process runs, or one on another host with a fresh heartbeat; else None."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        found = _read(fd)
        if found is None:
            return None
        if found.on_this_host():
            return found if found.alive() else None
        return found if _heartbeat_age(fd) < STALE_AFTER else None
    finally:
        os.close(fd)
