"""The torch-against-engine loop shared by `residual_throughput.py` and `spd_throughput.py`
(no JAX import: their `--torch-only` runs without it).

Each repeat times the torch baseline at each thread count and then the engine at each R
(runs at once), alternately in the same process, so that other work on the host falls on
both alike, and records the load average after it. `summarise` takes medians over the
repeats, in units per wall second and per CPU-second, and the ratios JAX / torch of the
medians, for every (R, thread count).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
from typing import Callable


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def add_arguments(ap: argparse.ArgumentParser, count: str, default: list[int], jax_steps: int,
                  what: str) -> None:
    """The drivers' shared flags; `--{count}` is the list of R values."""
    ap.add_argument(f"--{count}", type=int, nargs="+", default=default,
                    help=f"R: {what} the JAX side trains at once (each value timed every repeat)")
    ap.add_argument("--steps", type=int, default=jax_steps, help="JAX steps per chunk")
    ap.add_argument("--torch-steps", type=int, default=None, help="default per case")
    ap.add_argument("--threads", type=int, nargs="+", default=None,
                    help="torch thread counts, each timed every repeat (default: all cores)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torch-only", action="store_true", help="time the baseline alone")


def header(torch_version: str, jax_module=None) -> str:
    """One line: the platform, torch, the CPUs, the load, and (if given) jax's devices."""
    return (f"{platform.platform()} | torch {torch_version} | {cpu_count()} CPUs | "
            f"load {os.getloadavg()[0]:.1f}"
            + ("" if jax_module is None else
               f" | jax {jax_module.__version__}, {len(jax_module.devices())} devices"))


def time_alternately(repeats: int, threads: list[int], torch_rate: Callable[[int, int], dict],
                     runners: dict, jax_rate: Callable[[object, bool], dict],
                     line: Callable[[str, dict], str]):
    """({threads: [torch runs]}, {R: [jax runs]}, [load averages]): each repeat
    `torch_rate(threads, repeat)` at every thread count, then `jax_rate(runner, warm)` at
    every R of `runners` (warm from the second repeat on); the load average before the
    first repeat and after each."""
    torch_runs = {t: [] for t in threads}
    jax_runs = {R: [] for R in runners}
    load = [os.getloadavg()]
    for rep in range(repeats):
        for t in threads:
            torch_runs[t].append(torch_rate(t, rep))
            print(line("torch", torch_runs[t][-1]), flush=True)
        for R, runner in runners.items():
            jax_runs[R].append(jax_rate(runner, rep > 0))
            print(line("jax", jax_runs[R][-1]), flush=True)
        load.append(os.getloadavg())
    return torch_runs, jax_runs, load


def medians(runs: list[dict], unit: str) -> dict:
    """{median_{unit}_per_s, median_{unit}_per_cpu_s} over the runs."""
    return {f"median_{unit}_per_{s}": statistics.median(r[f"{unit}_per_{s}"] for r in runs)
            for s in ("s", "cpu_s")}


def summarise(row: dict, torch_runs: dict, jax_runs: dict, unit: str, count: str, steps: int,
              describe: Callable[[float], str] = lambda med: "") -> dict:
    """Fills `row` with torch[threads], jax[R] (medians, `count`: R, steps, runs),
    speedup_vs_torch[R][threads] and speedup_per_cpu_s[R][threads]; prints a line each.
    `describe(median rate)` adds to each line."""
    case, key, cpu = row["case"], f"median_{unit}_per_s", f"median_{unit}_per_cpu_s"
    row["torch"] = {}
    for t, runs in torch_runs.items():
        row["torch"][t] = {**medians(runs, unit), "runs": runs}
        m = row["torch"][t]
        print(f"{case}: torch, {t} thread(s), median of {len(runs)}: {m[key]:.2f} "
              f"{unit.replace('_', '-')}/s{describe(m[key])}, {m[cpu]:.2f} per CPU-second",
              flush=True)
    if jax_runs:
        row["jax"], row["speedup_vs_torch"], row["speedup_per_cpu_s"] = {}, {}, {}
    for R, runs in jax_runs.items():
        row["jax"][R] = m = {**medians(runs, unit), count: R, "steps": steps, "runs": runs}
        ratios = {t: m[key] / row["torch"][t][key] for t in torch_runs}
        per_cpu = {t: m[cpu] / row["torch"][t][cpu] for t in torch_runs}
        row["speedup_vs_torch"][R], row["speedup_per_cpu_s"][R] = ratios, per_cpu
        print(f"{case}: jax R={R} median of {len(runs)}: {m[key]:.2f} {unit.replace('_', '-')}/s"
              f"{describe(m[key])}, {m[cpu]:.2f} per CPU-second -> "
              + ", ".join(f"x{v:.1f} (x{per_cpu[t]:.1f} per CPU-second) vs torch on "
                          f"{t} thread(s)" for t, v in ratios.items()), flush=True)
    return row


__all__ = ["add_arguments", "cpu_count", "header", "medians", "summarise", "time_alternately"]
