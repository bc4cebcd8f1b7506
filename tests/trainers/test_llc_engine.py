"""The LLC pass gets what every sweep of the engine gets, met as a user meets it: `toymodels
llc DIR` killed with SIGKILL after its first chunk landed, then rerun to the end, and the
same pass in two processes (jax.distributed, gloo), each give the bits of one
uninterrupted single-process pass over an identical copy of DIR.

The source is the identity linear model of tests/trainers/test_llc.py trained 300 steps
(not yet at its minimum: the chains' bits are what is compared, not λ), 40 runs. An LLC
block is V = 4 runs (2^15 values / (4 chains x 300 examples x (3 + 3))), so --chunk-size 1
makes 10 chunks of 4 runs on one device, and 3 chunks of 16 runs (the last one 8 runs
and 8 of padding, all on process 0's devices) on 2 processes x 2 devices. 3000 draws make
a chunk last about 0.1-0.2 s on CPU, so that a kill lands mid-pass: the nine chunks after
the first leave it a second or more. Every pass runs on CPU devices (JAX_PLATFORMS=cpu),
also where a GPU is present: on a GPU the chunks would take milliseconds.

Both tests are `slow`: each process of a pass spends about 5 s of CPU compiling the LLC
block, and each test runs three (about 35 and 44 s of CPU in all with the fixtures). The
default suite checks chunk sizes and an interrupted pass's resume in one process
(tests/trainers/test_llc.py).
"""

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

from helpers import run_cli, same_arrays
from helpers import LLC_IDENTITY as LINEAR
from helpers import LLC_SHARP as SHARP

N_RUNS = 40
SOURCE = {**LINEAR, "train": {**LINEAR["train"], "steps": 300},
          "sweep": {"seed": list(range(N_RUNS))}}
LLC_FLAGS = ["--loss", "dataset", "--draws", "3000", "--burn-in", "100",
             "--epsilon", str(SHARP["epsilon"]), "--gamma", str(SHARP["gamma"]),
             "--nbeta", str(SHARP["nbeta"]), "--chunk-size", "1"]
TRAINED = ("W", "loss", "final_loss", "final_loss_se")  # the source's (no bias)
CPU = {**os.environ, "JAX_PLATFORMS": "cpu"}


def llc_args(out, *extra, devices=1) -> list[str]:
    return ["--cpu-devices", str(devices), "llc", str(out), *LLC_FLAGS, *extra]


def llc_names(ds) -> list[str]:
    return sorted(v for v in ds.data_vars if v.startswith("llc"))


def same_llc(ds, reference) -> None:
    """Every llc* variable of `ds` equals the reference's, bit for bit, attrs included."""
    names = llc_names(reference)
    assert llc_names(ds) == names and "llc_trace" in names
    for name in names:
        np.testing.assert_array_equal(ds[name].values, reference[name].values, err_msg=name)
        assert ds[name].attrs == reference[name].attrs, name


def work_dirs(out) -> list:
    return sorted(out.glob("llc-*"))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The finished toy-model sweep whose runs the passes estimate (never written to)."""
    out = tmp_path_factory.mktemp("llc_engine") / "source"
    tm.run_sweep(tm.parse_config(SOURCE), out, quiet=True)
    return out


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory):
    """One uninterrupted single-process pass (one CPU device) over a copy of the source."""
    out = tmp_path_factory.mktemp("llc_engine") / "reference"
    shutil.copytree(source, out)
    result = run_cli(*llc_args(out, "--quiet"), env=CPU)
    assert result.returncode == 0, result.stderr
    ds = tm.load(out)
    assert np.isfinite(ds.llc.values).all() and ds.llc_trace.shape == (N_RUNS, 4, 3000)
    assert not work_dirs(out)
    return ds


@pytest.mark.slow  # about 35 s of CPU with its fixtures
def test_a_pass_killed_mid_way_resumes_to_the_uninterrupted_bits(tmp_path, source, reference):
    """SIGKILL after the first chunk file landed (its lock and work folder left behind,
    results.nc untouched); the same command, rerun, takes the stale lock over, trains only
    the missing runs and gives every llc* variable the uninterrupted pass's bits."""
    out = tmp_path / "killed"
    shutil.copytree(source, out)
    args = llc_args(out, "--quiet")
    log = tmp_path / "killed.stderr"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "toymodels", *args],
                                stdout=subprocess.DEVNULL, stderr=err, env=CPU)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline and not (
                work_dirs(out) and store.done_ranges(work_dirs(out)[0])):
            time.sleep(0.01)
        assert proc.poll() is None, f"the pass ended before the kill: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "no chunk file landed in 300 s"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    [work] = work_dirs(out)
    done = int(store.done_mask(work, N_RUNS).sum())
    assert 0 < done < N_RUNS, f"kill landed after {done} of {N_RUNS} runs: no resume to see"
    assert (out / lock.LOCK).exists()  # the killed process's lock, left behind
    assert not llc_names(tm.load(out))  # results.nc untouched: no llc variables yet

    resumed = run_cli(*args[:-1], env=CPU)  # without --quiet: its messages are checked
    assert resumed.returncode == 0, resumed.stderr
    assert (f"taking over the stale lock of pid {proc.pid} on host {socket.gethostname()}"
            in resumed.stderr), resumed.stderr
    assert f"{work}: resuming: {done} of {N_RUNS} runs already done" in resumed.stderr, \
        resumed.stderr
    ds = tm.load(out)
    same_llc(ds, reference)
    same_arrays(ds, tm.load(source), TRAINED)  # the source's own variables unchanged
    assert sorted(os.listdir(out)) == ["manifest.json", "results.nc"]  # no work folder, no lock


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # about 44 s of CPU with its fixtures
def test_two_processes_give_the_single_process_bits(tmp_path, source, reference):
    """jax.distributed: 2 processes x 2 CPU devices (as tests/test_sweep.py runs a sweep)
    estimate the 40 runs together; the last chunk's runs are all on process 0's devices,
    so process 1 writes no file for it."""
    out, port = tmp_path / "joint", _free_port()
    shutil.copytree(source, out)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "toymodels",
         *llc_args(out, "--quiet", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                   "--process-id", str(i), devices=2)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CPU) for i in range(2)]
    try:
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-2000:]
        assert f"{out}: added llc, " in stdout, stdout  # (gloo writes to stdout too)
    ds = tm.load(out)
    same_llc(ds, reference)
    same_arrays(ds, tm.load(source), TRAINED)
    assert sorted(os.listdir(out)) == ["manifest.json", "results.nc"]
