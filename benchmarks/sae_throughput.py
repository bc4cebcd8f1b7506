"""SAE training throughput: JAX against the PyTorch baseline, SAE-steps/s and samples/s.

The two cases of the SAE speed spec (`baseline_torch_sae.CASES`): 1,000 relu SAEs of
width 20 on 5 dims (F = 20 features, p = 0.05) and 100 of width 512 on 256 dims (F = 512,
p = 0.01), batch 1024, fresh data every step. Each repeat times the JAX side and (with
`--baseline`) `baseline_torch_sae.torch_sae_rate`, alternately in the same process, so
that other work on the host falls on both alike; the figures are medians over
`--repeats`, and the ratio is JAX / torch of the medians. FLOPs count the matmuls only
(`baseline_torch_sae.matmul_flops`, the same count for both sides); the share of the
ceiling is against `ceiling.matmul_ceiling`, measured first in the same run (n = 2048
and 4096, as throughput.py does).

The JAX side is `jax_sae_rate`. FOR NOW IT IS A MINIMAL PURE-JAX STAND-IN (the block
marked below): vmap over the R SAEs of a per-SAE step (same data law, same relu SAE and
loss, optax.adam with torch's defaults), lax.scan over the steps, one jit, the R axis
split over the JAX CPU devices. Its draws use `toymodels.threefry.uniform`, the bits of
`jax.random.uniform` written as one fusable program (with jax.random.uniform the draws
alone took 2.2 s a step for 512 -> 256, 0.94 s for 20 -> 5, against 0.19 and 0.12). It
is to be replaced by the project's real SAE trainer, keeping the signature and the
returned keys.

As throughput.py does, this imports `toymodels` as an installed package and sets one
JAX CPU device per core. With `--baseline` it also needs torch, so run it from the
benchmark venv, which has jax, optax, torch and the project (editable) installed:

    /tmp/benchvenv/bin/python benchmarks/sae_throughput.py --baseline \
        --json benchmarks/results_sae.json
    python benchmarks/sae_throughput.py --only small --repeats 1   # JAX alone
    /tmp/benchvenv/bin/python benchmarks/sae_throughput.py --check
        # the stand-in's loss, gradients and one Adam step against torch's
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax

# As the `toymodels` command does: one JAX CPU device per core, so a sweep uses them all.
jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import toymodels as tm  # noqa: E402  (the real trainer will come from here)
from toymodels.threefry import uniform  # noqa: E402
from baseline_torch_sae import CASES, DECODER_NORM, L1_COEFF, LR, matmul_flops  # noqa: E402

# JAX runs far more steps than torch in the same time; steps per case of the JAX side.
JAX_STEPS = {"small": 40, "large": 20}


# ---------------------------------------------------------------------------------------
# BEGIN TEMPORARY STAND-IN: a minimal pure-JAX reference trainer, to be replaced by the
# project's real SAE trainer. Same data law, SAE, loss, init and optimiser as
# baseline_torch_sae.py, written per SAE and vmapped over R.
# ---------------------------------------------------------------------------------------
def _init_one(key, N: int, d: int, F: int):
    """One SAE's fixed dictionary truth [F, d] and parameters (April-update init)."""
    k_truth, k_dec = jax.random.split(key)
    truth = jax.random.normal(k_truth, (F, d))
    truth = truth / jnp.linalg.norm(truth, axis=-1, keepdims=True)
    W_dec = jax.random.normal(k_dec, (N, d))
    W_dec = DECODER_NORM * W_dec / jnp.linalg.norm(W_dec, axis=-1, keepdims=True)
    params = {"W_enc": W_dec.T, "b_enc": jnp.zeros(N), "W_dec": W_dec, "b_dec": jnp.zeros(d)}
    return truth, params


def _loss_one(params, h, l1_coeff):
    """mean_b ||h - h_hat||^2 + l1 * sum_j f_j ||W_dec[j]||, for h [B, d]."""
    f = jax.nn.relu(h @ params["W_enc"] + params["b_enc"])
    h_hat = f @ params["W_dec"] + params["b_dec"]
    recon = jnp.sum((h - h_hat) ** 2, axis=-1)
    sparsity = f @ jnp.linalg.norm(params["W_dec"], axis=-1)
    return jnp.mean(recon + l1_coeff * sparsity)


def _optimizer():
    return optax.adam(LR, b1=0.9, b2=0.999, eps=1e-8)  # torch.optim.Adam's defaults


@functools.lru_cache(maxsize=None)
def _trainer(R: int, N: int, d: int, batch: int, steps: int, F: int, p: float,
             l1_coeff: float):
    """init(key) -> state, and the jitted train(state) -> (state, last losses [R])."""
    opt = _optimizer()
    devices = jax.devices()
    sharding = None
    if len(devices) > 1 and R % len(devices) == 0:  # split the R axis over the devices
        mesh = jax.sharding.Mesh(np.array(devices), ("r",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("r"))

    def step_one(params, opt_state, truth, key):
        k_active, k_magnitude = jax.random.split(key)
        # threefry.uniform: the bits of jax.random.uniform, ~10x faster on CPU (rng.py)
        active = uniform(k_active, (batch, F)) < p
        x = jnp.where(active, uniform(k_magnitude, (batch, F)), 0.0)
        loss, grads = jax.value_and_grad(_loss_one)(params, x @ truth, l1_coeff)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    step_all = jax.vmap(step_one)

    @jax.jit
    def train(state):
        params, opt_state, truth, keys, t0 = state

        def body(carry, t):
            params, opt_state, _ = carry
            step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, t)
            params, opt_state, loss = step_all(params, opt_state, truth, step_keys)
            return (params, opt_state, loss), None

        carry = (params, opt_state, jnp.zeros(R))
        (params, opt_state, loss), _ = jax.lax.scan(body, carry, t0 + jnp.arange(steps))
        return (params, opt_state, truth, keys, t0 + steps), loss

    def init(seed: int):
        k_init, k_data = jax.random.split(jax.random.key(seed))
        truth, params = jax.vmap(_init_one, (0, None, None, None))(
            jax.random.split(k_init, R), N, d, F)
        state = (params, jax.vmap(opt.init)(params), truth, jax.random.split(k_data, R))
        if sharding is not None:
            state = jax.device_put(state, sharding)
        return (*state, jnp.int32(0))

    return init, train, 1 if sharding is None else len(devices)


def jax_sae_rate(R, N, d, batch, steps, F=None, p=0.05, *, l1_coeff=L1_COEFF,
                 seed=0) -> dict:
    """Time `steps` steps of R relu SAEs in JAX (after one untimed call of as many).

    Returns the keys of `torch_sae_rate` (sae_steps_per_s, samples_per_s, seconds,
    flops per step, gflops, cores_busy, final_loss, ...) and first_call_seconds
    (compilation, when not cached, plus the warm-up call).
    """
    F = N if F is None else F
    init, train, split_over = _trainer(R, N, d, batch, steps, F, float(p), float(l1_coeff))
    state = init(seed)
    start = time.perf_counter()
    state, loss = train(state)  # compile (first time only) + warm-up
    jax.block_until_ready(loss)
    first_call = time.perf_counter() - start
    first_loss = float(jnp.mean(loss))
    start, cpu = time.perf_counter(), time.process_time()
    state, loss = train(state)
    jax.block_until_ready(loss)
    seconds = time.perf_counter() - start
    busy = (time.process_time() - cpu) / seconds
    flops = matmul_flops(R, N, d, batch, F)
    return {
        "R": R, "N": N, "d": d, "F": F, "p": p, "batch": batch, "steps": steps,
        "l1_coeff": l1_coeff, "devices": split_over, "seconds": seconds,
        "cores_busy": busy, "first_call_seconds": first_call,
        "sae_steps_per_s": R * steps / seconds,
        "samples_per_s": R * steps * batch / seconds,
        "flops": flops, "gflops": flops * steps / seconds / 1e9,
        "loss_after_warmup": first_loss, "final_loss": float(jnp.mean(loss)),
        "trainer": "stand-in (minimal pure-JAX vmap + scan)",
    }
# END TEMPORARY STAND-IN -----------------------------------------------------------------


def check(R: int = 3, N: int = 12, d: int = 5, B: int = 64, seed: int = 0) -> float:
    """The stand-in's loss, gradients and one Adam step against the torch baseline's on
    the same parameters and inputs; returns the largest relative difference."""
    import torch

    from baseline_torch_sae import sae_loss

    rng = np.random.default_rng(seed)
    names = ("W_enc", "b_enc", "W_dec", "b_dec")
    shapes = ((R, d, N), (R, N), (R, N, d), (R, d))
    params = {k: rng.standard_normal(s, dtype=np.float32) * 0.3 for k, s in zip(names, shapes)}
    h = np.abs(rng.standard_normal((R, B, d), dtype=np.float32))

    tparams = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()}
    loss_t = sae_loss(*(tparams[k] for k in names), torch.tensor(h), L1_COEFF)
    loss_t.backward()
    grads_t = {k: tparams[k].grad.clone().numpy() for k in names}
    torch.optim.Adam(list(tparams.values()), lr=LR, betas=(0.9, 0.999)).step()

    jparams = jax.tree.map(jnp.asarray, params)
    loss_one = jax.vmap(jax.value_and_grad(_loss_one), (0, 0, None))
    losses, grads_j = loss_one(jparams, jnp.asarray(h), L1_COEFF)
    opt = _optimizer()
    updates, _ = jax.vmap(opt.update)(grads_j, jax.vmap(opt.init)(jparams), jparams)
    stepped = optax.apply_updates(jparams, updates)

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    diffs = {"loss": rel(jnp.sum(losses), loss_t.detach().numpy())}
    for k in names:
        diffs["grad " + k] = rel(grads_j[k], grads_t[k])
        diffs["adam " + k] = rel(stepped[k] - params[k],  # the update, not the sum
                                 tparams[k].detach().numpy() - params[k])
    for k, v in diffs.items():
        print(f"  {k:<10} max relative difference {v:.1e}")
    return max(diffs.values())


def _line(who: str, name: str, r: dict, ceiling: float | None) -> str:
    out = (f"{who:<5} {name:<6} R={r['R']:<5} {r['F']}->{r['d']} N={r['N']:<4} "
           f"steps={r['steps']:<4} | {r['sae_steps_per_s']:>10,.0f} SAE-steps/s "
           f"| {r['samples_per_s']:.3g} samples/s | {r['gflops']:6.1f} GFLOP/s")
    if ceiling:
        out += f" ({100 * r['gflops'] / ceiling:.0f}%)"
    return out + f" | {r['cores_busy']:.2f} cores busy | {r['seconds']:.1f} s"


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(CASES), action="append")
    parser.add_argument("--steps", type=int, default=None, help="JAX steps (default per case)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", action="store_true", help="also time the PyTorch baseline")
    parser.add_argument("--baseline-steps", type=int, default=None,
                        help="torch steps (default per case, baseline_torch_sae.CASES)")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--ceiling-n", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--ceiling-repeats", type=int, default=5)
    parser.add_argument("--check", action="store_true",
                        help="compare the JAX loss, gradients and Adam step with torch's, exit")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.check:
        worst = check()
        # Updates are read off float32 parameters (|W| ~ 1, lr = 1e-3), so they carry
        # ~1e-4 of rounding; a wrong loss or optimiser setting is off by far more.
        print("OK" if worst < 1e-3 else "FAIL", f"(largest {worst:.1e})")
        return 0 if worst < 1e-3 else 1

    from baseline_torch_sae import measure_ceiling
    from ceiling import machine_info

    info = machine_info()
    print(f"{info['platform']} | jax {jax.__version__} | {len(jax.devices())} x "
          f"{jax.devices()[0].device_kind} | {info.get('cpu_count', '?')} CPUs "
          f"({info.get('cpu_model')}) | toymodels from {Path(tm.__file__).parent}")
    measured = None if args.no_ceiling else measure_ceiling(
        args.ceiling_n, args.ceiling_repeats, set_devices=False)
    ceiling = measured and measured["gflops"]
    if args.baseline:
        from baseline_torch_sae import torch_sae_rate

    rows = []
    for name in args.only or list(CASES):
        R, N, d, B, F, p, torch_steps, warmup = CASES[name]
        jax_runs, torch_runs = [], []
        for rep in range(args.repeats):  # alternately, so that load falls on both alike
            if args.baseline:
                torch_runs.append(torch_sae_rate(
                    R, N, d, B, args.baseline_steps or torch_steps, F=F, p=p,
                    warmup_steps=warmup, seed=rep))
                print(_line("torch", name, torch_runs[-1], ceiling), flush=True)
            jax_runs.append(jax_sae_rate(R, N, d, B, args.steps or JAX_STEPS[name], F=F,
                                         p=p, seed=rep))
            print(_line("jax", name, jax_runs[-1], ceiling), flush=True)
        row = {"case": name, "R": R, "N": N, "d": d, "F": F, "p": p, "batch": B,
               "jax_sae_steps_per_s": _median(jax_runs, "sae_steps_per_s"),
               "jax_samples_per_s": _median(jax_runs, "samples_per_s"),
               "jax_gflops": _median(jax_runs, "gflops"),
               "jax_cores_busy": _median(jax_runs, "cores_busy"),
               "jax_final_loss": _median(jax_runs, "final_loss"), "jax_runs": jax_runs}
        summary = (f"{name}: median of {args.repeats}: jax {row['jax_sae_steps_per_s']:,.0f} "
                   f"SAE-steps/s ({row['jax_samples_per_s']:.3g} samples/s, "
                   f"{row['jax_gflops']:.1f} GFLOP/s")
        if ceiling:
            row["jax_share_of_ceiling"] = row["jax_gflops"] / ceiling
            summary += f", {100 * row['jax_share_of_ceiling']:.0f}% of {ceiling:.0f}"
        summary += ")"
        if args.baseline:
            row.update({"torch_sae_steps_per_s": _median(torch_runs, "sae_steps_per_s"),
                        "torch_samples_per_s": _median(torch_runs, "samples_per_s"),
                        "torch_gflops": _median(torch_runs, "gflops"),
                        "torch_cores_busy": _median(torch_runs, "cores_busy"),
                        "torch_final_loss": _median(torch_runs, "final_loss"),
                        "torch_runs": torch_runs})
            row["speedup_vs_torch"] = row["jax_sae_steps_per_s"] / row["torch_sae_steps_per_s"]
            summary += (f" | torch {row['torch_sae_steps_per_s']:,.0f} SAE-steps/s "
                        f"({row['torch_gflops']:.1f} GFLOP/s) -> x{row['speedup_vs_torch']:.1f}")
        print(summary, flush=True)
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "sae_throughput", "machine": info, "ceiling_gflops": ceiling,
            "ceiling": measured, "repeats": args.repeats, "l1_coeff": L1_COEFF, "lr": LR,
            "jax_trainer": "stand-in (minimal pure-JAX vmap + scan)",
            "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
