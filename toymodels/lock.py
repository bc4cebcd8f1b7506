"""One writer per results directory: a lock file, created atomically (O_CREAT | O_EXCL).

`DIR/lock` holds who writes DIR: a JSON record of the pid, the host, the process start
time (so that a reused pid is not taken for the writer) and since when. A sweep or an
analysis holds it while it writes; a second one is refused with one line naming the
holder. A lock left by a killed process on this host is recognised and taken over. A lock
from another host cannot be checked: the message says how to remove it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from toymodels.errors import UserError

LOCK = "lock"
_READ_TRIES = 20  # a new lock file is empty until its creator writes it: retry for ~1 s


@contextlib.contextmanager
def held(out: str | Path, command: str, say=lambda msg: None):
    """Holds the lock of results directory `out` (which must exist) inside the block.

    Args:
      out: the results directory.
      command: what holds it, e.g. "toymodels sweep", shown to a refused second writer.
      say: prints one line; told when a stale lock is taken over.

    Raises:
      UserError: another live process holds the lock, or its holder cannot be checked.

    Example::

      with held("runs/intro", "toymodels analyze"):
          ...  # write runs/intro/results.nc
    """
    mine = acquire(Path(out), command, say)
    try:
        yield mine
    finally:
        release(Path(out), mine)


def acquire(out: Path, command: str, say) -> dict:
    """Creates `out/lock` holding this process's record (see `held`); returns the record."""
    path, mine = out / LOCK, record(os.getpid(), command)
    for _ in range(3):  # each pass either takes the lock, raises, or saw it change
        if _create(path, mine):
            return mine
        holder = _read(path)
        if holder is not None:
            _refuse_unless_stale(out, holder)
            if _remove_if_unchanged(path, holder):
                say(f"{out}: taking over the stale lock of {describe(holder)}, "
                    "which is no longer running")
    raise UserError(f"{path}: the lock keeps changing hands; is another toymodels process "
                    f"starting on {out}?")


def release(out: Path, mine: dict) -> None:
    """Removes `out/lock` if it is still ours."""
    path = out / LOCK
    if _read_once(path) == mine:
        path.unlink(missing_ok=True)


def record(pid: int, command: str) -> dict:
    """Who holds a lock: pid, host, process start time (None if unknown), since, command."""
    return {"pid": pid, "host": socket.gethostname(), "start": process_start(pid),
            "since": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": command}


def describe(holder: dict) -> str:
    """E.g. 'pid 4242 on host node7 (toymodels sweep) since 2025-01-31 12:00:00 +0000'."""
    return (f"pid {holder.get('pid')} on host {holder.get('host')} ({holder.get('command')}) "
            f"since {holder.get('since')}")


def process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks after boot (/proc/PID/stat field 22);
    None if there is no such process or no /proc (then a pid is checked by liveness only)."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def is_running(holder: dict) -> bool:
    """Whether the lock's process (on this host) is alive and is the same process."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    fields = _proc_stat(pid)
    if fields is not None:  # a zombie is dead; another start time means a reused pid
        return fields[0] not in ("Z", "X") and holder.get("start") in (None, fields[19])
    if Path("/proc/self/stat").exists():  # /proc, but no such process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _proc_stat(pid) -> list[str] | None:
    """Fields 3... of /proc/PID/stat (state first), or None."""
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError, TypeError):
        return None
    return text[text.rindex(")") + 2:].split()


def _refuse_unless_stale(out: Path, holder: dict) -> None:
    """Raises the one-line refusal unless `holder` is a dead process on this host."""
    if holder.get("host") != socket.gethostname():
        raise UserError(
            f"{out}: locked by {describe(holder)}; a process on another host cannot be "
            f"checked from here: if it is no longer running, delete {out / LOCK} and rerun")
    if is_running(holder):
        raise UserError(f"{out}: in use by {describe(holder)}; wait for it to finish, "
                        "or use another directory")


def _create(path: Path, mine: dict) -> bool:
    """Creates the lock file with O_CREAT | O_EXCL; False if it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    except OSError as e:
        raise UserError(f"{path}: cannot create the lock file ({e.strerror})") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(mine))
    except OSError as e:
        path.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write the lock file ({e.strerror})") from None
    return True


def _read(path: Path) -> dict | None:
    """The lock's record; None if there is no lock file (any more).

    Raises:
      UserError: the file stays unreadable (its creator died before writing it).
    """
    for _ in range(_READ_TRIES):
        holder = _read_once(path)
        if holder != {}:
            return holder
        time.sleep(0.05)
    raise UserError(f"{path}: unreadable lock file; if no toymodels process is using "
                    f"{path.parent}, delete it and rerun")


def _read_once(path: Path) -> dict | None:
    """The record, None if there is no file, {} if it is not (yet) a JSON record."""
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) and holder else {}


def _remove_if_unchanged(path: Path, stale: dict) -> bool:
    """Deletes the lock file if it still holds `stale`. Processes that take over a lock
    queue on flock(DIR), so that none deletes the lock another has just taken."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _read_once(path) != stale:
            return False
        path.unlink()
        return True
    finally:
        os.close(fd)
