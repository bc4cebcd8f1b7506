"""One writer per results directory (toymodels.lock): a second writer is refused in one
line naming the holder, a dead holder's lock is taken over, the lock goes when its block
ends, however it ends. Lock files are written here by hand for live and dead processes of
this host and for another host; the holders are real processes. (Real sweeps racing for
a directory, and a killed sweep's lock taken over by the next sweep: tests/test_misuse.py.)
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import toymodels as tm
from toymodels import lock


@pytest.fixture
def sleeper():
    """A live process of this host, other than this one (killed afterwards)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def state(pid: int) -> str:
    """The state letter of process `pid` (/proc/PID/stat field 3)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()[0]


def test_a_second_writer_gets_one_line_naming_the_holder(tmp_path, sleeper):
    """A live process of this host holds DIR: acquiring it is refused with one line that
    names the holder (pid, host, command, since) and says what to do; the holder's lock
    is left as it was and nothing is taken over."""
    path = tmp_path / lock.LOCK
    holder = lock.record(sleeper.pid, "toymodels sweep")
    path.write_text(json.dumps(holder))
    said = []
    with pytest.raises(tm.UserError) as e:
        lock.acquire(tmp_path, "toymodels analyze", said.append)
    assert str(e.value) == (f"{tmp_path}: in use by pid {sleeper.pid} on host "
                            f"{socket.gethostname()} (toymodels sweep) since "
                            f"{holder['since']}; wait for it to finish, or use another "
                            "directory")
    assert "\n" not in str(e.value)
    assert said == [] and json.loads(path.read_text()) == holder
    with pytest.raises(tm.UserError, match=f"in use by pid {sleeper.pid} "):
        with lock.held(tmp_path, "toymodels sweep"):
            pytest.fail("the block ran without the lock")
    assert json.loads(path.read_text()) == holder  # a refused writer removes nothing


PROC = Path("/proc/self/stat").exists()


@pytest.mark.skipif(not PROC, reason="a zombie is told from a live process through /proc")
def test_a_dead_processs_lock_is_taken_over_zombie_or_reaped(tmp_path):
    """A holder killed with SIGKILL: first a zombie (dead, not yet reaped), then reaped
    (no such process). Both times the lock is taken over with one message naming the dead
    holder, and the lock file then holds this process's record."""
    path = tmp_path / lock.LOCK
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        dead = lock.record(proc.pid, "toymodels sweep")
        assert lock.is_running(dead)
        proc.kill()
        deadline = time.time() + 30
        while state(proc.pid) != "Z" and time.time() < deadline:
            time.sleep(0.01)
        assert state(proc.pid) == "Z"
        assert not lock.is_running(dead)
        for reaped in (False, True):
            if reaped:
                proc.wait()
                assert not lock.is_running(dead)
            path.write_text(json.dumps(dead))
            said = []
            with lock.held(tmp_path, "toymodels sweep", said.append) as mine:
                assert said == [f"{tmp_path}: taking over the stale lock of pid {proc.pid} "
                                f"on host {socket.gethostname()} (toymodels sweep) since "
                                f"{dead['since']}, which is no longer running"]
                assert json.loads(path.read_text()) == mine and mine["pid"] == os.getpid()
            assert not path.exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_pid_is_stale_a_lock_from_another_host_is_not(tmp_path):
    """Lock files as a killed process (its pid now another process's) and a process on
    another host leave them."""
    path = tmp_path / lock.LOCK
    reused = {**lock.record(os.getpid(), "toymodels sweep"), "start": "1"}  # not our start
    path.write_text(json.dumps(reused))
    said = []
    with lock.held(tmp_path, "toymodels sweep", said.append) as mine:
        assert json.loads(path.read_text()) == mine and mine["pid"] == os.getpid()
        with pytest.raises(tm.UserError, match=f"in use by pid {os.getpid()}"):
            lock.acquire(tmp_path, "toymodels analyze", said.append)
    assert said == [f"{tmp_path}: taking over the stale lock of {lock.describe(reused)}, "
                    "which is no longer running"]
    assert not path.exists()
    path.write_text(json.dumps({**reused, "host": "elsewhere"}))
    with pytest.raises(tm.UserError) as e:
        lock.acquire(tmp_path, "toymodels sweep", said.append)
    assert "on host elsewhere" in str(e.value) and f"delete {path} and rerun" in str(e.value)
    path.write_text("")  # its creator died between creating and writing it
    with pytest.raises(tm.UserError, match="unreadable lock file"):
        lock.acquire(tmp_path, "toymodels sweep", said.append)


def test_the_lock_is_released_when_the_block_ends(tmp_path):
    """Held inside the block only, with this process's record; once released, the next
    writer takes it with nothing to say (no stale lock left behind)."""
    path = tmp_path / lock.LOCK
    said = []
    for command in ("toymodels sweep", "toymodels analyze"):
        with lock.held(tmp_path, command, said.append) as mine:
            assert json.loads(path.read_text()) == mine
            assert mine["pid"] == os.getpid() and mine["command"] == command
            assert mine["host"] == socket.gethostname()
        assert not path.exists()
    assert said == []


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(ValueError):
        with lock.held(tmp_path, "toymodels sweep"):
            assert (tmp_path / lock.LOCK).exists()
            raise ValueError("boom")
    assert not (tmp_path / lock.LOCK).exists()


def test_a_lock_taken_over_by_another_is_not_removed_by_the_old_holder(tmp_path, sleeper):
    """release removes the lock only while it is still ours: a block whose lock was taken
    over meanwhile (here: replaced by hand) leaves the new holder's lock in place."""
    path = tmp_path / lock.LOCK
    other = lock.record(sleeper.pid, "toymodels sweep")
    with lock.held(tmp_path, "toymodels analyze"):
        path.write_text(json.dumps(other))
    assert json.loads(path.read_text()) == other


def test_a_directory_that_does_not_exist_is_one_clear_error(tmp_path):
    missing = tmp_path / "nothere"
    with pytest.raises(tm.UserError) as e:
        with lock.held(missing, "toymodels sweep"):
            pytest.fail("the block ran without the lock")
    assert str(e.value) == (f"{missing / lock.LOCK}: cannot create the lock file "
                            "(No such file or directory)")
    assert not missing.exists()
