"""The machine's own float32 matmul ceiling, measured through JAX.

Times a jit-compiled n x n @ n x n float32 matmul under
``jax.default_matmul_precision("float32")`` (compilation and a warm-up call
excluded, every call synchronised with ``block_until_ready``) and reports the
median GFLOP/s over repeats, counting 2 * n**3 FLOPs per matmul.

Usage:
    python benchmarks/ceiling.py                    # n=2048
    python benchmarks/ceiling.py --n 1024 4096 --repeats 20 --json ceiling.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info() -> dict:
    """CPU count, JAX version, devices and platform of this machine."""
    import jax
    import numpy as np

    devices = jax.devices()
    return {
        "cpu_count": _cpu_count(),
        "os_cpu_count": os.cpu_count(),
        "jax_version": jax.__version__,
        "jaxlib_version": _jaxlib_version(),
        "numpy_version": np.__version__,
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


def matmul_gflops(n: int = 2048, repeats: int = 10, seed: int = 0) -> float:
    """Median GFLOP/s of a jit-compiled float32 n x n matmul (2 n^3 FLOPs)."""
    import jax
    import jax.numpy as jnp

    with jax.default_matmul_precision("float32"):
        ka, kb = jax.random.split(jax.random.PRNGKey(seed))
        a = jax.random.normal(ka, (n, n), dtype=jnp.float32)
        b = jax.random.normal(kb, (n, n), dtype=jnp.float32)
        f = jax.jit(jnp.matmul)
        f(a, b).block_until_ready()  # compile
        f(a, b).block_until_ready()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(a, b).block_until_ready()
            times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times) / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2048], help="matrix size(s)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", metavar="FILE", help="write the numbers to FILE")
    args = ap.parse_args(argv)

    info = machine_info()
    print("jax %s, backend %s, devices %s, %d CPUs, %s"
          % (info["jax_version"], info["backend"], ", ".join(info["devices"]),
             info["cpu_count"], info["platform"]))
    results = []
    for n in args.n:
        g = matmul_gflops(n, args.repeats)
        print("float32 matmul n=%d: median %.1f GFLOP/s over %d repeats" % (n, g, args.repeats))
        results.append({"n": n, "repeats": args.repeats, "gflops": g})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "ceiling", "machine": info, "results": results},
                      fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
