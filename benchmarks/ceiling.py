"""The machine's float32 matmul ceiling on every core, as the sweep uses them.

The ceiling is the best sustained float32 matmul throughput this process gets out of ALL
the cores it may run on. No one program is sure to reach it (a single JAX matmul was
measured at 57.5 GFLOP/s on a 2-core AMD EPYC where numpy's sgemm gave 148-155), so
several honest candidates are timed and the ceiling is the largest of their medians:

- ``numpy``: ``a @ b`` in numpy, i.e. the sgemm of numpy's BLAS (OpenBLAS in the
  wheels), multi-threaded over every core unless OPENBLAS_NUM_THREADS/OMP_NUM_THREADS
  say otherwise (both are recorded);
- ``jax``: one jit-compiled matmul on the default JAX device, XLA's own threading;
- ``jax_per_device``: one matmul per JAX CPU device, all dispatched asynchronously and
  then waited for, as ``toymodels.sweep.make_chunk_runner`` runs a chunk (skipped with
  a single device);
- ``jax_batched``: one jit-compiled batched matmul ``[C, n, n] @ [C, n, n]`` with C the
  number of cores, on the default device.

Every JAX candidate runs under ``jax.default_matmul_precision("float32")`` and every
candidate's product is checked against a float64 one (a candidate that is not a float32
matmul would not be honest). Each sample is a loop of calls lasting at least
``min_seconds``, synchronised (``block_until_ready``), after compilation and two warm-up
calls; the candidates are timed in interleaved rounds, so that load from other processes
falls on all of them alike, and each reports its median GFLOP/s over ``repeats`` rounds
(2 n^3 FLOPs per matmul) and the median of process CPU time / wall time ("cores busy":
how many cores it kept busy). For the per-device candidate to mean what the sweep does,
JAX must have one CPU device per core, as the ``toymodels`` command and
``throughput.py`` set up (``jax_num_cpu_devices``); ``main`` here does the same.

Usage:
    python benchmarks/ceiling.py                    # n = 1024, 2048, 4096
    python benchmarks/ceiling.py --n 2048 --repeats 20 --json ceiling.json
    python benchmarks/ceiling.py --only numpy jax   # some candidates only
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

CANDIDATES = ("numpy", "jax", "jax_per_device", "jax_batched")
DEFAULT_N = (1024, 2048, 4096)
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _cpu_model() -> dict:
    """Model name and the matmul-relevant ISA flags, from /proc/cpuinfo (Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
    except OSError:
        return {"cpu_model": platform.processor() or None, "cpu_flags": None}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
    return {"cpu_model": fields.get("model name"),
            "cpu_flags": [f for f in wanted if f in flags]}


def _blas() -> dict | None:
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # pragma: no cover - older numpy
        return None
    return {k: blas.get(k) for k in ("name", "version", "openblas configuration")}


def machine_info() -> dict:
    """CPUs, CPU model, BLAS, thread settings, JAX version, devices and platform."""
    import jax
    import numpy as np

    devices = jax.devices()
    return {
        "cpu_count": _cpu_count(),
        "os_cpu_count": os.cpu_count(),
        **_cpu_model(),
        "jax_version": jax.__version__,
        "jaxlib_version": _jaxlib_version(),
        "numpy_version": np.__version__,
        "numpy_blas": _blas(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV},
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kinds": sorted({getattr(d, "device_kind", "?") for d in devices}),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
    }


def _jaxlib_version():
    try:
        import jaxlib

        return jaxlib.__version__
    except Exception:  # pragma: no cover
        return None


def _operands(n: int, count: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, n), dtype=np.float32),
             rng.standard_normal((n, n), dtype=np.float32)) for _ in range(count)]


def _check(name: str, a, b, c) -> None:
    """`c` must be a float32 product of `a` and `b` (a few rows against float64)."""
    import numpy as np

    c = np.asarray(c)
    if c.dtype != np.float32:
        raise AssertionError(f"{name}: product is {c.dtype}, not float32")
    ref = a[:4].astype(np.float64) @ b.astype(np.float64)
    err = np.abs(c[:4] - ref).max() / np.abs(ref).max()
    if not err < 1e-4:  # float32 accumulation gives ~1e-6; bfloat16 would give ~1e-2
        raise AssertionError(f"{name}: relative error {err:.1e}, not a float32 matmul")


def _candidates(n: int, names, seed: int) -> dict:
    """name -> (call, FLOPs per call); each call waits until its work is done."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    devices, cores = jax.devices(), _cpu_count()
    (a, b), = _operands(n, 1, seed)
    out = {}
    if "numpy" in names:
        _check("numpy", a, b, a @ b)
        out["numpy"] = (lambda: a @ b, 2.0 * n**3)
    with jax.default_matmul_precision("float32"):
        matmul = jax.jit(jnp.matmul)
        if "jax" in names:
            ja, jb = jax.device_put(a), jax.device_put(b)
            _check("jax", a, b, matmul(ja, jb))
            out["jax"] = (lambda: matmul(ja, jb).block_until_ready(), 2.0 * n**3)
        if "jax_per_device" in names and len(devices) > 1:
            pairs = _operands(n, len(devices), seed + 1)
            placed = [jax.device_put(p, d) for p, d in zip(pairs, devices)]
            for (x, y), (jx, jy) in zip(pairs, placed):
                _check("jax_per_device", x, y, matmul(jx, jy))

            def per_device():
                outs = [matmul(x, y) for x, y in placed]  # asynchronous: all at once
                for o in outs:
                    o.block_until_ready()

            out["jax_per_device"] = (per_device, 2.0 * n**3 * len(devices))
        if "jax_batched" in names:
            pairs = _operands(n, cores, seed + 2)
            ba = jax.device_put(np.stack([p[0] for p in pairs]))
            bb = jax.device_put(np.stack([p[1] for p in pairs]))
            prod = matmul(ba, bb)
            _check("jax_batched", pairs[-1][0], pairs[-1][1], prod[-1])
            out["jax_batched"] = (lambda: matmul(ba, bb).block_until_ready(),
                                  2.0 * n**3 * cores)
    # The first calls to jax were compile + check; with it two warm-up calls.
    for call, _ in out.values():
        call()
        call()
    return out


def measure(ns=DEFAULT_N, repeats: int = 10, min_seconds: float = 0.2,
            names=CANDIDATES, seed: int = 0) -> list[dict]:
    """One row per (candidate, n): median GFLOP/s, all samples, cores busy.

    A sample is `calls` back-to-back calls (as many as last `min_seconds`, from one
    timed call); the candidates of one n are timed in `repeats` interleaved rounds.
    """
    rows = []
    for n in ns:
        cands = _candidates(n, names, seed)
        calls = {}
        for name, (call, _) in cands.items():
            start = time.perf_counter()
            call()
            calls[name] = max(1, round(min_seconds / (time.perf_counter() - start)))
        samples = {name: [] for name in cands}
        busy = {name: [] for name in cands}
        for _ in range(repeats):
            for name, (call, flops) in cands.items():
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(calls[name]):
                    call()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                samples[name].append(calls[name] * flops / wall / 1e9)
                busy[name].append(cpu / wall)
        for name in cands:
            rows.append({"candidate": name, "n": n, "repeats": repeats,
                         "calls_per_sample": calls[name],
                         "gflops": statistics.median(samples[name]),
                         "gflops_all": samples[name],
                         "cores_busy": statistics.median(busy[name])})
        del cands
    return rows


def matmul_ceiling(ns=DEFAULT_N, repeats: int = 10, min_seconds: float = 0.2,
                   names=CANDIDATES) -> dict:
    """The all-core float32 matmul ceiling: the largest median among the candidates.

    Returns {"gflops", "set_by" (candidate), "n", "cores", "jax_devices", "candidates"
    (every row of `measure`)}.
    """
    import jax

    load_before = _load()
    rows = measure(ns, repeats, min_seconds, names)
    best = max(rows, key=lambda r: r["gflops"])
    return {"gflops": best["gflops"], "set_by": best["candidate"], "n": best["n"],
            "cores": _cpu_count(), "cores_busy": best["cores_busy"],
            "jax_devices": len(jax.devices()),
            "repeats": repeats, "min_seconds": min_seconds,
            "load_before": load_before, "load_after": _load(), "candidates": rows}


def _load() -> dict:
    """The 1-minute load average and, where Linux has it, the share of the last 10 s
    in which some runnable task waited for a CPU (/proc/pressure/cpu)."""
    out = {"loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    try:
        with open("/proc/pressure/cpu") as fh:
            some = fh.readline().split()
        fields = dict(f.split("=") for f in some[1:])
        out["cpu_pressure_some_avg10"] = float(fields["avg10"])
    except (OSError, KeyError, ValueError, IndexError):
        out["cpu_pressure_some_avg10"] = None
    return out


def describe(ceiling: dict) -> str:
    """The ceiling and what set it; a second line if it did not get every core."""
    line = ("matmul ceiling on %d cores: %.1f GFLOP/s, set by %s at n=%d (median of %d "
            "rounds, float32; candidates: %s)"
            % (ceiling["cores"], ceiling["gflops"], ceiling["set_by"], ceiling["n"],
               ceiling["repeats"],
               ", ".join(sorted({r["candidate"] for r in ceiling["candidates"]}))))
    if ceiling["cores_busy"] < 0.9 * ceiling["cores"]:
        line += ("\nWARNING: it kept only %.2f of the %d cores busy (other work was "
                 "running, or no candidate threads over every core): the ceiling is "
                 "low, and shares of it high"
                 % (ceiling["cores_busy"], ceiling["cores"]))
    return line


def matmul_gflops(n: int = 2048, repeats: int = 10, seed: int = 0) -> float:
    """Median GFLOP/s of the ``jax`` candidate alone (one jit-compiled matmul), the old
    ceiling; not the all-core ceiling (see `matmul_ceiling`)."""
    (row,) = measure((n,), repeats, names=("jax",), seed=seed)
    return row["gflops"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_N),
                    help="matrix size(s)")
    ap.add_argument("--repeats", type=int, default=10, help="interleaved rounds")
    ap.add_argument("--min-seconds", type=float, default=0.2,
                    help="least time per sample")
    ap.add_argument("--only", nargs="+", choices=CANDIDATES, default=list(CANDIDATES))
    ap.add_argument("--json", metavar="FILE", help="write the numbers to FILE")
    args = ap.parse_args(argv)

    import jax

    # As the `toymodels` command does: one JAX CPU device per core.
    jax.config.update("jax_num_cpu_devices", _cpu_count())
    info = machine_info()
    print("jax %s, backend %s, %d devices, %d CPUs (%s), %s"
          % (info["jax_version"], info["backend"], len(info["devices"]),
             info["cpu_count"], info["cpu_model"], info["platform"]))
    ceiling = matmul_ceiling(args.n, args.repeats, args.min_seconds, args.only)
    for r in ceiling["candidates"]:
        print("  %-15s n=%-5d median %6.1f GFLOP/s  (%.2f cores busy, %d calls/sample)"
              % (r["candidate"], r["n"], r["gflops"], r["cores_busy"],
                 r["calls_per_sample"]))
    print(describe(ceiling))
    print("load average %s before, %s after" % (ceiling["load_before"]["loadavg_1min"],
                                               ceiling["load_after"]["loadavg_1min"]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "ceiling", "machine": info, "ceiling": ceiling},
                      fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
