"""One writer per results directory (toymodels.lock): lock files written here by hand
for processes of this host and of another host. (Real sweeps racing for a directory, and
a killed sweep's lock taken over by the next sweep: tests/test_misuse.py.)
"""

import json
import os

import pytest

import toymodels as tm
from toymodels import lock


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


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(ValueError):
        with lock.held(tmp_path, "toymodels sweep"):
            assert (tmp_path / lock.LOCK).exists()
            raise ValueError("boom")
    assert not (tmp_path / lock.LOCK).exists()
