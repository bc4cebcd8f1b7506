"""The results directory survives misuse: two writers, a killed writer, deleted results,
a bad --out, damaged chunk files, a full disk, Ctrl-C and SIGTERM. Each is met the way a
user meets it: real directories, real second processes, real signals, a real full disk."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import toymodels as tm
from toymodels import lock, store

from helpers import files_in, run_cli, same_arrays

# 64 runs = 4 chunks of one group (V = 16) with --chunk-size 1
SMALL = """
name = "misuse"
[model]
n_features = 20
n_hidden = 5
[train]
steps = 200
batch_size = 1024
log_every = 20
snapshot_every = 20
eval_samples = 8192
[sweep]
sparsity = [0.0, 0.5, 0.9, 0.99]
seed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
"""
# the same grid, trained longer (about a second a chunk), so that a signal lands mid-sweep
LONG = SMALL.replace("steps = 200", "steps = 400").replace("snapshot_every = 20\n", "")
N_RUNS, CHUNK = 64, 16
SNAPSHOTS = ("W", "b", "loss", "final_loss", "final_loss_se", "W_snapshots", "b_snapshots")


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """The two sweep files, and each one's uninterrupted result (trained in this process)."""
    root = tmp_path_factory.mktemp("sweeps")
    files = {name: root / f"{name}.toml" for name in ("small", "long")}
    files["small"].write_text(SMALL)
    files["long"].write_text(LONG)
    results = {name: tm.run_sweep(tm.load_config(path), root / name, chunk_size=1, quiet=True)
               for name, path in files.items()}
    return files, results


@pytest.fixture(scope="module")
def unfinished(sweeps, tmp_path_factory):
    """The small sweep with every chunk file written and no results.nc yet."""
    out = tmp_path_factory.mktemp("unfinished") / "run"
    finish, store.finish = store.finish, lambda out, ds: None
    try:
        tm.run_sweep(tm.load_config(sweeps[0]["small"]), out, chunk_size=1, quiet=True)
    finally:
        store.finish = finish
    assert len(store.done_ranges(out)) == N_RUNS // CHUNK
    return out


def sweep_args(config, out, *extra) -> list[str]:
    return ["--cpu-devices", "1", "sweep", str(config), "--out", str(out), "--chunk-size", "1",
            *extra]


def start_sweep(config, out) -> subprocess.Popen:
    """A sweep in the background, with Ctrl-C's default action as in a terminal. (A child
    inherits SIGINT ignored, as a shell script starts background jobs, but not a handler.)"""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([sys.executable, "-m", "toymodels",
                                 *sweep_args(config, out, "--quiet")], stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_for_first_chunk(proc: subprocess.Popen, out) -> None:
    deadline = time.time() + 300
    while not store.done_ranges(out) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep ended before the test could signal it"


def one_line(stderr: str) -> str:
    """The only line of `stderr`, which must hold no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def messages(stderr: str) -> list[str]:
    """The lines of `stderr` without the progress bar (split on carriage returns too)."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.replace("\r", "\n").splitlines() if "run/s" not in line]


def chunk_files(out) -> list[str]:
    return [f"chunks/{store.chunk_path(out, a, b).name}" for a, b in store.done_ranges(out)]


@pytest.mark.slow  # 25 s with its setup: in the slow suite (CI runs it)
def test_a_second_writer_is_refused_and_a_killed_writers_lock_is_taken_over(tmp_path, sweeps):
    """While a sweep holds DIR (stopped with SIGSTOP, so that it surely does), a second
    sweep and an analysis are refused in one line naming it; once it is killed (SIGKILL,
    its lock left behind) the same command takes the stale lock over and finishes."""
    files, results = sweeps
    out = tmp_path / "run"
    first = start_sweep(files["long"], out)
    try:
        wait_for_first_chunk(first, out)
        first.send_signal(signal.SIGSTOP)
        for args in (sweep_args(files["long"], out, "--quiet"), ["analyze", str(out)]):
            refused = run_cli(*args)
            assert refused.returncode == 2
            line = one_line(refused.stderr)
            assert line.startswith(f"toymodels: error: {out}: in use by pid {first.pid} on host "
                                   f"{socket.gethostname()} (toymodels sweep) since 20"), line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / lock.LOCK).exists()
    again = run_cli(*sweep_args(files["long"], out))
    assert again.returncode == 0, again.stderr
    assert (f"{out}: taking over the stale lock of pid {first.pid} on host {socket.gethostname()}"
            in messages(again.stderr)[0]), again.stderr
    same_arrays(tm.load(out), tm.load(results["long"]))
    assert files_in(out) == ["manifest.json", "results.nc"]  # the lock is released


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
def test_every_process_of_a_distributed_sweep_stops_when_process_0_cannot_lock(tmp_path, sweeps):
    """Only process 0 takes the lock; the others learn that it could not, instead of
    waiting for it in a barrier."""
    out, port = tmp_path / "run", _free_port()
    out.mkdir()
    with lock.held(out, "a test"):
        procs = [subprocess.Popen(
            [sys.executable, "-m", "toymodels", *sweep_args(sweeps[0]["small"], out, "--quiet"),
             "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
            stderr=subprocess.PIPE, text=True) for i in range(2)]
        errors = [p.communicate(timeout=300)[1] for p in procs]
    for p, err in zip(procs, errors):
        assert p.returncode == 2, err
        assert f"in use by pid {os.getpid()}" in one_line(err)


@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
def test_results_deleted_after_the_sweep_are_retrained(tmp_path, sweeps):
    files, results = sweeps
    out = tmp_path / "run"
    shutil.copytree(results["small"], out)
    (out / "results.nc").unlink()
    rerun = run_cli(*sweep_args(files["small"], out))
    assert rerun.returncode == 0, rerun.stderr
    assert messages(rerun.stderr)[0] == (f"{out}: results.nc is missing and no chunk files "
                                         f"remain: retraining all {N_RUNS} runs")
    same_arrays(tm.load(out), tm.load(results["small"]), SNAPSHOTS)


@pytest.mark.slow  # 10 s plus the 11 s fixture; a bad --out of sweep is also a row of tests/test_bad_paths.py (the default suite's 7-minute budget; CI runs it)
def test_an_out_that_is_a_file_or_cannot_be_made(tmp_path, sweeps):
    afile = tmp_path / "notes.txt"
    afile.write_text("not a directory")
    expected = {afile: f"{afile}: is a file, not a directory",
                afile / "run": f"{afile / 'run'}: cannot create the directory (Not a directory)"}
    for out, message in expected.items():
        result = run_cli(*sweep_args(sweeps[0]["small"], out, "--quiet"))
        assert result.returncode == 2
        assert one_line(result.stderr).startswith(f"toymodels: error: {message}")
    assert afile.read_text() == "not a directory"


@pytest.mark.slow  # the 11 s fixture (the default suite's 7-minute budget; CI runs it)
def test_a_directory_of_other_files_is_refused_and_left_as_it_was(tmp_path, sweeps):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(tm.UserError, match="is not empty and is not a results directory"):
        tm.run_sweep(tm.load_config(sweeps[0]["small"]), tmp_path, quiet=True)
    assert files_in(tmp_path) == ["notes.txt"]


@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
def test_damaged_chunk_files_are_deleted_and_retrained(tmp_path, sweeps, unfinished):
    """A truncated copy, a file with flipped bytes in the middle (inside an array: its
    CRC-32 fails) and a file of another run count are each named, deleted and retrained;
    what a killed write left (temporary files) is removed."""
    files, results = sweeps
    out = tmp_path / "run"
    shutil.copytree(unfinished, out)
    truncated, flipped, short = (store.chunk_path(out, a, a + CHUNK) for a in (0, 16, 32))
    data = truncated.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2:len(data) // 2 + 8] = bytes(255 - b for b in data[len(data) // 2:][:8])
    flipped.write_bytes(bytes(data))
    with np.load(short) as z:
        arrays = {k: z[k][:CHUNK // 2] for k in z.files}
    with open(short, "wb") as f:
        np.savez(f, **arrays)
    leftovers = [out / "chunks" / ".00000048-00000064.npz.tmp-99999", out / ".results.nc.tmp-99999"]
    for path in leftovers:
        path.write_bytes(b"partial")
    rerun = run_cli(*sweep_args(files["small"], out))
    assert rerun.returncode == 0, rerun.stderr
    lines = messages(rerun.stderr)
    assert lines[0].startswith(f"{truncated}: damaged chunk file (BadZipFile: ")
    assert lines[1].startswith(f"{flipped}: damaged chunk file (BadZipFile: Bad CRC-32 ")
    assert lines[2] == (f"{short}: damaged chunk file (array 'W' does not hold {CHUNK} runs); "
                        f"deleted it, runs 32-47 will be retrained")
    assert lines[3] == f"{out}: resuming: 16 of {N_RUNS} runs already done"
    same_arrays(tm.load(out), tm.load(results["small"]), SNAPSHOTS)
    assert files_in(out) == ["manifest.json", "results.nc"]


def _mount_tmpfs(folder, kib: int) -> None:
    folder.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {result.stderr.strip()}")


def _resize_tmpfs(folder, kib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(folder)], check=True)


@pytest.mark.slow  # 13 s: in the slow suite (CI runs it)
def test_a_full_disk_keeps_what_is_saved_and_the_same_command_resumes(tmp_path, sweeps, unfinished):
    """On a tmpfs sized for one chunk and a half the second chunk does not fit; resized
    for all chunks but not results.nc, the final write fails and the chunks are kept;
    resized again, the same command finishes with the uninterrupted result's bits."""
    files, results = sweeps
    size = os.sysconf("SC_PAGE_SIZE")
    page = lambda path: -(-path.stat().st_size // size) * size // 1024  # KiB in whole pages
    chunk = page(store.chunk_path(unfinished, 0, CHUNK))
    final, meta = page(results["small"] / "results.nc"), 4 * size // 1024  # manifest, lock, slack
    disk, out = tmp_path / "disk", tmp_path / "disk" / "run"
    _mount_tmpfs(disk, meta + chunk + chunk // 2)
    try:
        full = run_cli(*sweep_args(files["small"], out, "--quiet"))
        assert full.returncode == 2
        assert one_line(full.stderr) == (
            f"toymodels: error: disk full writing runs 16-31 to {out}: 16 of {N_RUNS} runs are "
            "saved; free space and rerun the same command to resume")
        assert files_in(out) == ["chunks/00000000-00000016.npz", "manifest.json"]
        _resize_tmpfs(disk, meta + 4 * chunk + final // 2)
        full = run_cli(*sweep_args(files["small"], out, "--quiet"))
        assert full.returncode == 2
        assert one_line(full.stderr) == (
            f"toymodels: error: disk full writing results.nc to {out}: {N_RUNS} of {N_RUNS} "
            "runs are saved; free space and rerun the same command to resume")
        assert files_in(out) == [*chunk_files(out), "manifest.json"]
        assert len(store.done_ranges(out)) == N_RUNS // CHUNK
        _resize_tmpfs(disk, meta + 4 * chunk + final + 64)
        done = run_cli(*sweep_args(files["small"], out, "--quiet"))
        assert done.returncode == 0, done.stderr
        same_arrays(tm.load(out), tm.load(results["small"]), SNAPSHOTS)
        assert files_in(out) == ["manifest.json", "results.nc"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize("name, code", [
    pytest.param("SIGINT", 130, marks=pytest.mark.slow),  # the same path; 18 s, so in CI's slow run
    pytest.param("SIGTERM", 143, marks=pytest.mark.slow),  # 9 s; with the 11 s fixture, in slow
    # (the default suite's budget; Ctrl-C mid-write is tests/test_store.py's, by default)
])
def test_an_interrupted_sweep_says_what_is_saved_and_resumes(tmp_path, sweeps, name, code):
    files, results = sweeps
    out = tmp_path / "run"
    proc = start_sweep(files["long"], out)
    wait_for_first_chunk(proc, out)
    proc.send_signal(getattr(signal, name))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    saved = int(store.done_mask(out, N_RUNS).sum())
    how = "interrupted" if name == "SIGINT" else "interrupted by SIGTERM"
    assert one_line(err) == (f"toymodels: {how}: {saved} of {N_RUNS} runs saved; rerun the "
                             "same command to resume")
    assert 0 < saved < N_RUNS
    assert files_in(out) == [*chunk_files(out), "manifest.json"]  # no lock, no partial file
    resumed = run_cli(*sweep_args(files["long"], out))
    assert resumed.returncode == 0, resumed.stderr
    assert messages(resumed.stderr)[0] == f"{out}: resuming: {saved} of {N_RUNS} runs already done"
    same_arrays(tm.load(out), tm.load(results["long"]))
