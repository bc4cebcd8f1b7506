"""Sweeps end to end: chunking, devices, kill and resume, the store, non-finite runs,
static groups (combined and split: tests/test_groups.py)."""

import collections
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

import toymodels as tm
from toymodels import store
from toymodels.sweep import describe_devices, first_per_process, useful_devices
from toymodels.trainers import TRAINERS
from toymodels.trainers.toy import TRAINER as TOY
from toymodels.train import block_size

from helpers import TWELVE_RUNS as CFG
from helpers import config, raw, run_cli, same_arrays, static_config


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tm.run_sweep(config(**CFG), tmp_path_factory.mktemp("ref") / "run", quiet=True)
    return tm.load(out)


def test_opens_with_plain_xarray(reference, tmp_path):
    import xarray as xr
    out = tm.run_sweep(config(**CFG), tmp_path / "run", quiet=True)
    with xr.open_dataset(out / "results.nc") as ds:
        same_arrays(ds, reference)


@pytest.mark.parametrize("chunk", [pytest.param(1, marks=pytest.mark.slow), 7,
                                   pytest.param(12, marks=pytest.mark.slow)])  # 3 s each
def test_chunk_size_changes_nothing(tmp_path, reference, chunk):
    out = tm.run_sweep(config(**CFG), tmp_path / "run", chunk_size=chunk, quiet=True)
    same_arrays(tm.load(out), reference)


@pytest.mark.slow  # 13 s; chunk exactness is also held by tests/test_train.py and test_behaviour (issue 23's budget)
def test_chunks_of_whole_groups_when_the_grid_is_larger_than_a_group(tmp_path):
    """More runs than one group: chunk sizes 1, 7 and all give identical arrays."""
    cfg = config(train={"steps": 20, "batch_size": 1024, "log_every": 10},
                 model={"n_features": 20, "n_hidden": 5},
                 sweep={"sparsity": [0.0, 0.3, 0.6, 0.9, 0.99], "seed": [0, 1, 2, 3, 4, 5, 6]})
    V = block_size(cfg.spec)
    assert cfg.n_runs > V, "the test must span several groups"
    results = [tm.load(tm.run_sweep(cfg, tmp_path / str(c), chunk_size=c, quiet=True))
               for c in (1, 7, cfg.n_runs)]
    for ds in results[1:]:
        same_arrays(ds, results[0])


def test_adding_a_grid_point_leaves_other_runs_unchanged(tmp_path, reference):
    cfg = config(**{**CFG, "sweep": {**CFG["sweep"], "sparsity": [0.0, 0.3, 0.5, 0.9]}})
    ds = tm.load(tm.run_sweep(cfg, tmp_path / "run", quiet=True))
    same_arrays(ds.sel(sparsity=[0.0, 0.5, 0.9]), reference)


SCRIPT = textwrap.dedent("""
    import sys, jax
    jax.config.update("jax_num_cpu_devices", int(sys.argv[1]))
    import toymodels as tm
    sys.path.insert(0, sys.argv[3])
    from helpers import DEVICE_RUNS, config
    assert len(jax.devices()) == int(sys.argv[1])
    tm.run_sweep(config(**DEVICE_RUNS), sys.argv[2], chunk_size=int(sys.argv[4]), quiet=True)
""")


@pytest.mark.slow
def test_device_count_changes_nothing(tmp_path):
    """1 vs 4 simulated CPU devices (jax_num_cpu_devices), each in its own process. `slow`
    (9 s on 2 cores): the default suite checks 2 processes x 2 devices; the slow suite
    also 1 vs 2 devices for every model kind and across a resume."""
    here = os.path.dirname(__file__)
    for n in (1, 4):
        result = subprocess.run([sys.executable, "-c", SCRIPT, str(n), str(tmp_path / f"dev{n}"),
                                 here, "8"], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    one, four = (tm.load(tmp_path / f"dev{n}") for n in (1, 4))
    assert one.attrs["device"].startswith("cpu x1") and four.attrs["device"].startswith("cpu x4")
    same_arrays(one, four)


def test_a_sweep_uses_no_more_devices_than_it_has_groups():
    V = block_size(config(**CFG).spec)
    devices = list(range(4))  # stand-ins: only the count matters
    assert useful_devices(devices, TOY, config(**CFG).spec, 1) == [0]
    assert useful_devices(devices, TOY, config(**CFG).spec, V) == [0]
    assert useful_devices(devices, TOY, config(**CFG).spec, V + 1) == [0, 1]
    assert useful_devices(devices, TOY, config(**CFG).spec, 10 * V) == devices


KINDS_SCRIPT = textwrap.dedent("""
    import sys, jax
    jax.config.update("jax_num_cpu_devices", int(sys.argv[1]))
    import toymodels as tm
    for kind in tm.MODELS:
        cfg = tm.parse_config({
            "name": kind, "model": {"kind": kind, "n_features": 20, "n_hidden": 10},
            "train": {"steps": 20, "batch_size": 1024, "log_every": 10, "eval_samples": 8192},
            "sweep": {"sparsity": [0.0, 0.9], "seed": [0, 1, 2, 3, 4], "dropout": [0.0, 0.3]}})
        tm.run_sweep(cfg, f"{sys.argv[2]}/{kind}", quiet=True)
""")


@pytest.mark.slow
def test_device_count_changes_nothing_for_every_model_kind(tmp_path):
    """1 vs 2 devices (20 runs: two groups of 16), every model kind, a batch of 1024: the
    same bits. (Sharding the run
    axis with shard_map failed this for abs_computation: 2 devices compiled other fusions.)
    `slow` (26 s on 2 cores: 8 compiles): the default suite checks 2 processes x 2 devices
    against 1 device for the ReLU-output model."""
    for n in (1, 2):
        result = subprocess.run([sys.executable, "-c", KINDS_SCRIPT, str(n), str(tmp_path / f"dev{n}")],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    for kind in tm.MODELS:
        one, two = (tm.load(tmp_path / f"dev{n}" / kind) for n in (1, 2))
        names = [*tm.get_model(kind).dims, "loss", "final_loss", "final_loss_se"]
        same_arrays(one, two, names)
        assert two.attrs["device"].startswith("cpu x2")


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_result(tmp_path):
    """SIGKILL a sweep after its first chunk lands; the same command finishes it, on 1
    device, bit-identical to a fresh run on 2. `slow` (20 s on 2 cores): the default suite
    resumes interrupted and damaged sweeps bit-identically (tests/test_misuse.py)."""
    cfg_path = tmp_path / "kill.toml"
    cfg_path.write_text(textwrap.dedent("""
        name = "kill"
        [model]
        n_features = 20
        n_hidden = 5
        [train]
        steps = 1000
        batch_size = 1024
        log_every = 500
        [sweep]
        sparsity = [0.0, 0.3, 0.6, 0.9]
        seed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    """))
    out = tmp_path / "killed"
    args = ["--cpu-devices", "1", "sweep", str(cfg_path), "--out", str(out), "--chunk-size",
            "1", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "toymodels", *args])
    deadline = time.time() + 300
    while not store.done_ranges(out) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_runs = 48  # three chunks: chunk size 1 rounds up to one group of 16 runs
    done = store.done_mask(out, n_runs).sum()
    assert 0 < done < n_runs, f"kill landed after {done} of {n_runs} runs: test cannot see a resume"
    assert not store.is_complete(out)
    with pytest.raises(tm.UserError, match="not finished"):
        tm.load(out)
    resumed = run_cli(*args[:-1])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {done} of {n_runs} runs already done" in resumed.stderr
    fresh = tmp_path / "fresh"
    assert run_cli("sweep", str(cfg_path), "--out", str(fresh), "--quiet").returncode == 0  # 2 devices
    same_arrays(tm.load(out), tm.load(fresh))
    assert not (out / "chunks").exists()


def test_rerun_of_a_finished_sweep_does_nothing(tmp_path, capsys):
    out = tm.run_sweep(config(**CFG), tmp_path / "run", quiet=True)
    before = (out / "results.nc").stat().st_mtime_ns
    tm.run_sweep(config(**CFG), out)
    assert "nothing to do" in capsys.readouterr().err
    assert (out / "results.nc").stat().st_mtime_ns == before


def test_a_different_config_into_the_same_directory_is_refused(tmp_path):
    out = tm.run_sweep(config(**CFG), tmp_path / "run", quiet=True)
    with pytest.raises(tm.UserError, match="different config"):
        tm.run_sweep(config(**{**CFG, "train": {**CFG["train"], "steps": 40}}), out, quiet=True)


def test_nonfinite_loss_is_reported_and_recorded(tmp_path, capsys):
    r = raw(train={"steps": 60, "batch_size": 64, "log_every": 20})
    r["sweep"] = {"learning_rate": [1e-3, 1e30]}
    cfg = tm.parse_config(r)
    ds = tm.load(tm.run_sweep(cfg, tmp_path / "run"))
    err = capsys.readouterr().err
    assert "warning: 1 of 2 runs did not train: 1 with a non-finite loss ((learning_rate=1e+30) at step" in err
    assert ds.nonfinite_step.sel(learning_rate=1e-3) == -1
    assert ds.nonfinite_step.sel(learning_rate=1e30) > 0


@pytest.mark.slow  # 11 s; the command line flow is also run by tests/test_cli.py and tests/test_docs.py
def test_cli_sweep_set_info_and_load(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('name = "cli"\n[model]\nn_features = 4\nn_hidden = 2\n[train]\nsteps = 40\n'
                    'batch_size = 32\nlog_every = 20\n[sweep]\nsparsity = [0.0, 0.9]\n')
    out = tmp_path / "out"
    result = run_cli("sweep", str(toml), "--out", str(out), "--set", "train.steps=20",
                     "--set", "sweep.seed=[0,1,2]")
    assert result.returncode == 0, result.stderr
    assert "6/6" in result.stderr  # the progress bar
    info = run_cli("info", str(out))
    assert info.returncode == 0
    assert "complete: 6/6 runs done" in info.stdout and "seed (3): 0, 1, 2" in info.stdout
    assert "steps = 20" in info.stdout
    ds = tm.load(out)
    assert ds.W.dims[:2] == ("sparsity", "seed") and ds.sizes["step"] == 1
    assert run_cli("info", str(tmp_path / "nothing")).returncode == 2


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # 15 s: in the slow suite (CI runs it)
def test_two_processes_on_localhost_give_the_single_process_result(tmp_path):
    """jax.distributed: 2 processes x 2 simulated CPU devices train one sweep together."""
    toml = tmp_path / "d.toml"
    toml.write_text('name = "dist"\n[model]\nn_features = 20\nn_hidden = 5\n[train]\n'
                    'steps = 40\nbatch_size = 1024\nlog_every = 20\n[sweep]\n'
                    'sparsity = [0.0, 0.5, 0.9, 0.99]\nseed = [0, 1, 2, 3, 4]\n')
    out, port = tmp_path / "joint", _free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "toymodels", "--cpu-devices", "2", "sweep", str(toml), "--out",
         str(out), "--chunk-size", "8", "--quiet", "--coordinator", f"127.0.0.1:{port}",
         "--num-processes", "2", "--process-id", str(i)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    single = tmp_path / "single"
    result = run_cli("--cpu-devices", "1", "sweep", str(toml), "--out", str(single), "--quiet")
    assert result.returncode == 0, result.stderr
    joint = tm.load(out)
    assert "in 2 processes" in joint.attrs["device"]
    same_arrays(joint, tm.load(single))


# ---- static groups: each group a sweep of its own


@pytest.mark.slow
def test_chunk_size_changes_no_bit_inside_static_groups(tmp_path):
    """Slow; the default suite covers it per group (tests/test_data.py's chunk-size and
    second-group tests, and adding a group in tests/test_groups.py)."""
    c = static_config(n_hidden=[2, 3, 5])
    one = tm.load(tm.run_sweep(c, tmp_path / "c1", chunk_size=1, quiet=True))
    same_arrays(one, tm.load(tm.run_sweep(c, tmp_path / "whole", quiet=True)))


@pytest.mark.slow
def test_a_failure_in_one_group_keeps_the_finished_groups(tmp_path, monkeypatch):
    """Slow; tests/test_misuse.py's full-disk test covers one group. The disk fills up in the second group: the first group's chunks stay, and the same
    call resumes with only the missing runs."""
    c = static_config(n_hidden=[2, 3])
    out, writes, real = tmp_path / "r", [], store.write_chunk

    def full_disk(out_, first, arrays):
        if first >= c.groups[0].n_runs:
            raise OSError(errno.ENOSPC, "No space left on device")
        writes.append(first)
        real(out_, first, arrays)

    monkeypatch.setattr(store, "write_chunk", full_disk)
    with pytest.raises(tm.UserError, match=r"disk full .* 4 of 8 runs are saved"):
        tm.run_sweep(c, out, quiet=True)
    assert store.done_mask(out, c.n_runs).tolist() == [True] * 4 + [False] * 4
    monkeypatch.setattr(store, "write_chunk", real)
    resumed = tm.load(tm.run_sweep(c, out, quiet=True))
    same_arrays(resumed, tm.load(tm.run_sweep(c, tmp_path / "whole", quiet=True)))


@pytest.mark.slow  # 35 s of subprocesses (CI runs it); each step is tested by default
def test_cli_sweep_analyze_plot_on_static_axes(tmp_path):
    """The issue's example: n_hidden = [2, 3, 5] and optimizer = ["adam", "sgd"] in
    [sweep] give one directory, one Dataset with those dims, analysed and plotted."""
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n[model]\nn_features = 5\n[train]\nsteps = 40\n'
                    'batch_size = 64\nlog_every = 20\n[sweep]\nn_hidden = [2, 3, 5]\n'
                    'optimizer = ["adam", "sgd"]\nseed = [0, 1]\n')
    out = tmp_path / "out"
    for args in (["sweep", str(path), "--out", str(out), "--quiet"], ["analyze", str(out)],
                 ["plot", "features", str(out), "--out", str(tmp_path / "f.png"),
                  "-o", "axis=n_hidden"],
                 ["plot", "heatmap", str(out), "--out", str(tmp_path / "h.png"),
                  "-o", "var=n_represented", "-o", "x=n_hidden", "-o", "y=optimizer"],
                 ["info", str(out)]):
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
    assert "static groups: 6 (n_hidden x optimizer)" in done.stdout
    ds = tm.load(out)
    assert ds.W.dims == ("n_hidden", "optimizer", "seed", "hidden", "feature")
    assert ds.optimizer.values.tolist() == ["adam", "sgd"]
    assert (ds.n_represented.sel(n_hidden=2) <= 5).all() and "polytope" in ds
    assert not np.array_equal(ds.W.sel(optimizer="adam"), ds.W.sel(optimizer="sgd"))


def test_the_device_line_says_why_devices_were_left_idle():
    """40 runs in one block of V on a 2-core machine train on one device: the manifest's
    line says so instead of a bare 'cpu x1'."""
    cpu = types.SimpleNamespace(platform="cpu", device_kind="cpu")
    assert describe_devices([cpu], 1, 2) == "cpu x1 of 2 (cpu; no more devices than blocks of runs)"
    assert describe_devices([cpu, cpu], 1, 2) == "cpu x2 (cpu)"
    assert describe_devices([cpu, cpu], 2) == "cpu x2 (cpu) in 2 processes"


def test_a_trainer_can_ask_for_one_cpu_device_per_process():
    # the LLC trainer does (its blocks' LAPACK eigvalsh side by side on two CPU devices hung)
    Device = collections.namedtuple("Device", "id platform process_index")
    cpu = [Device(i, "cpu", i // 2) for i in range(4)]  # 2 processes x 2 devices
    assert first_per_process(cpu, 1) == [cpu[0], cpu[2]]
    assert first_per_process(cpu, 2) == cpu
    assert TRAINERS["llc"].cpu_devices == 1
    one = types.SimpleNamespace(cpu_devices=1, block_size=lambda spec: 1)  # a trainer asking
    assert useful_devices(cpu[:2], one, None, 10**6) == [cpu[0]]
    gpu = [Device(i, "gpu", 0) for i in range(2)]  # not limited off the CPU
    assert useful_devices(gpu, one, None, 10**6) == gpu
