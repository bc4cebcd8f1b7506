"""Baseline: training many sparse autoencoders at once "the usual PyTorch way".

This is our own implementation of the common recipe for SAEs on toy models (as in the
ARENA course's toy-model SAE exercises): every parameter carries a leading *instance*
axis R, every einsum runs over it, and one optimiser steps all instances together. The
SAE is the "relu" SAE of Anthropic's April 2024 update (no pre-encoder bias, L1 penalty
weighted by the decoder row norms).

Data, per instance r (fresh every step, drawn with torch on the fly, which is part of
the cost, as in ARENA):

    truth   [R, F, d]   F fixed random unit directions in d dims (drawn once)
    x       [R, B, F]   where(rand < p, rand, 0): each feature active with probability p,
                        magnitude Uniform[0, 1)
    h       = einsum("rbf,rfd->rbd", x, truth)            the SAE input, [R, B, d]

SAE and loss:

    W_enc [R, d, N], b_enc [R, N], W_dec [R, N, d], b_dec [R, d]   (torch Parameters)
    f     = relu(einsum("rbd,rdn->rbn", h, W_enc) + b_enc)
    h_hat = einsum("rbn,rnd->rbd", f, W_dec) + b_dec
    loss  = sum_r mean_b [ ||h - h_hat||^2 + l1 * sum_j f_j ||W_dec[r, j]||_2 ]
    optimiser: torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999)), no weight decay

Initialisation (as in the April update): decoder rows random directions of norm 0.1,
W_enc = W_dec^T, zero biases.

SAE-steps/s = R * steps / seconds (one "SAE step" is one optimisation step of one SAE on
a batch of B samples); samples/s = SAE-steps/s * B. FLOPs count the matmuls only, per
step: R * (2·B·F·d for the data, 10·B·d·N for the SAE: encoder forward and weight
gradient, decoder forward, weight gradient and input gradient; the encoder's input
gradient is not needed, h has no gradient).

torch is imported lazily; without it the CLI prints an install hint and exits with
status 2. The share of the matmul ceiling uses `ceiling.matmul_ceiling` (needs jax);
without jax the ceiling is skipped.

Usage:
    python benchmarks/baseline_torch_sae.py                 # the two cases of the spec
    python benchmarks/baseline_torch_sae.py --only small --steps 20
    python benchmarks/baseline_torch_sae.py --no-ceiling --json torch_sae.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

from baseline_torch import _cpu_count, _torch  # noqa: E402 (shared by every baseline)
from pathlib import Path

INSTALL_HINT = 'PyTorch is not installed; install the benchmark extras with: pip install -e ".[bench]"'

L1_COEFF = 1e-3   # the same fixed value in every case (and in the JAX comparison)
LR = 1e-3
DECODER_NORM = 0.1

# name: (R, N, d, batch, F, p, default steps, warm-up steps). Steps are chosen so that
# each case takes about 10-30 s on the 2-core machine of docs/performance.md.
CASES = {
    "small": (1000, 20, 5, 1024, 20, 0.05, 40, 3),     # 1,000 SAEs, 20 -> 5
    "large": (100, 512, 256, 1024, 512, 0.01, 8, 2),   # 100 SAEs, 512 -> 256
}



def matmul_flops(R: int, N: int, d: int, batch: int, F: int) -> float:
    """Matmul FLOPs of one training step of R SAEs (data + forward + backward)."""
    return float(R) * (2 * batch * F * d + 10 * batch * d * N)


def sae_loss(W_enc, b_enc, W_dec, b_dec, h, l1_coeff=L1_COEFF):
    """sum_r mean_b [||h - h_hat||^2 + l1 * sum_j f_j ||W_dec[r, j]||]; h is [R, B, d]."""
    torch = _torch()
    f = torch.relu(torch.einsum("rbd,rdn->rbn", h, W_enc) + b_enc[:, None, :])
    h_hat = torch.einsum("rbn,rnd->rbd", f, W_dec) + b_dec[:, None, :]
    recon = ((h - h_hat) ** 2).sum(-1)                               # [R, B]
    sparsity = (f * W_dec.norm(dim=-1)[:, None, :]).sum(-1)          # [R, B]
    return (recon + l1_coeff * sparsity).mean(1).sum()


class SAEs:
    """R independent relu SAEs (d -> N -> d) on R toy datasets, on a leading axis."""

    def __init__(self, R, N, d, F=None, p=0.05, l1_coeff=L1_COEFF, lr=LR, seed=0):
        torch = _torch()
        self.torch = torch
        self.R, self.N, self.d = R, N, d
        self.F = N if F is None else F
        self.p, self.l1_coeff = p, l1_coeff
        self.gen = torch.Generator().manual_seed(seed)
        truth = torch.randn(R, self.F, d, generator=self.gen)
        self.truth = truth / truth.norm(dim=-1, keepdim=True)               # [R, F, d]
        W_dec = torch.randn(R, N, d, generator=self.gen)
        W_dec = DECODER_NORM * W_dec / W_dec.norm(dim=-1, keepdim=True)
        self.W_dec = torch.nn.Parameter(W_dec)                              # [R, N, d]
        self.W_enc = torch.nn.Parameter(W_dec.transpose(1, 2).clone())      # [R, d, N]
        self.b_enc = torch.nn.Parameter(torch.zeros(R, N))
        self.b_dec = torch.nn.Parameter(torch.zeros(R, d))
        self.opt = torch.optim.Adam([self.W_enc, self.b_enc, self.W_dec, self.b_dec],
                                    lr=lr, betas=(0.9, 0.999), weight_decay=0.0)

    def sample(self, batch):
        """h [R, B, d]: fresh sparse features through the fixed dictionary."""
        torch = self.torch
        shape = (self.R, batch, self.F)
        active = torch.rand(shape, generator=self.gen) < self.p
        magnitude = torch.rand(shape, generator=self.gen)
        x = torch.where(active, magnitude, torch.zeros((), dtype=magnitude.dtype))
        return torch.einsum("rbf,rfd->rbd", x, self.truth)

    def step(self, batch):
        h = self.sample(batch)
        loss = sae_loss(self.W_enc, self.b_enc, self.W_dec, self.b_dec, h, self.l1_coeff)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss


def torch_sae_rate(R, N, d, batch, steps, *, F=None, threads=None, p=0.05,
                   warmup_steps=3, l1_coeff=L1_COEFF, seed=0) -> dict:
    """Time `steps` Adam steps (after `warmup_steps` untimed ones) of R relu SAEs.

    Returns sae_steps_per_s (R * steps / seconds), samples_per_s, seconds, flops
    (estimated matmul FLOPs per step, all R SAEs), gflops, cores_busy, the final loss
    (mean over instances) and the config.
    """
    torch = _torch()
    threads = _cpu_count() if threads is None else int(threads)
    torch.set_num_threads(threads)
    F = N if F is None else F
    model = SAEs(R, N, d, F=F, p=p, l1_coeff=l1_coeff, seed=seed)
    first = float(model.step(batch).detach()) / R
    for _ in range(warmup_steps - 1):
        model.step(batch)
    t0, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = model.step(batch)
    seconds = time.perf_counter() - t0  # CPU torch is synchronous
    busy = (time.process_time() - cpu) / seconds
    flops = matmul_flops(R, N, d, batch, F)
    return {
        "R": R, "N": N, "d": d, "F": F, "p": p, "batch": batch, "steps": steps,
        "warmup_steps": warmup_steps, "l1_coeff": l1_coeff, "threads": threads,
        "seconds": seconds, "cores_busy": busy,
        "sae_steps_per_s": R * steps / seconds,
        "samples_per_s": R * steps * batch / seconds,
        "flops": flops, "gflops": flops * steps / seconds / 1e9,
        "first_loss": first, "final_loss": float(loss.detach()) / R,
        "torch_version": torch.__version__,
    }


def measure_ceiling(ns, repeats, set_devices=True):
    """`ceiling.matmul_ceiling` (all-core float32 matmul ceiling), or None without jax.

    With `set_devices`, first gives JAX one CPU device per core (as ceiling.py does);
    a caller that has set up JAX already passes False."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import jax
    except ImportError:
        print("jax is not installed: no matmul ceiling (run benchmarks/ceiling.py "
              "elsewhere and compare GFLOP/s by hand)")
        return None
    if set_devices:  # as the `toymodels` command and ceiling.py do: one device per core
        jax.config.update("jax_num_cpu_devices", _cpu_count())
    from ceiling import describe, matmul_ceiling

    measured = matmul_ceiling(ns, repeats)
    for c in measured["candidates"]:
        print(f"  {c['candidate']:<15} n={c['n']:<5} {c['gflops']:6.1f} GFLOP/s "
              f"({c['cores_busy']:.2f} cores busy)")
    print(describe(measured))
    return measured


def line(name: str, r: dict, ceiling: float | None = None) -> str:
    out = (f"{name:<6} R={r['R']:<5} {r['F']}->{r['d']} N={r['N']:<4} B={r['batch']} "
           f"p={r['p']} steps={r['steps']:<4} | {r['sae_steps_per_s']:>9,.0f} SAE-steps/s "
           f"| {r['samples_per_s']:.3g} samples/s | {r['gflops']:6.1f} GFLOP/s")
    if ceiling:
        out += f" ({100 * r['gflops'] / ceiling:.0f}% of the all-core ceiling)"
    return out + f" | {r['cores_busy']:.2f} cores busy | {r['seconds']:.1f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=list(CASES), action="append")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default per case)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default per case)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--ceiling-n", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--ceiling-repeats", type=int, default=5)
    ap.add_argument("--json", metavar="FILE", help="write all numbers to FILE")
    args = ap.parse_args(argv)

    try:
        torch = _torch()
    except ImportError:
        print(INSTALL_HINT)
        return 2
    threads = _cpu_count() if args.threads is None else args.threads
    print("torch %s, %d threads, %s, l1=%g lr=%g"
          % (torch.__version__, threads, platform.processor() or platform.machine(),
             L1_COEFF, LR))
    measured = None if args.no_ceiling else measure_ceiling(args.ceiling_n,
                                                            args.ceiling_repeats)
    ceiling = measured and measured["gflops"]
    results = []
    for name in args.only or list(CASES):
        R, N, d, B, F, p, steps, warmup = CASES[name]
        runs = [torch_sae_rate(R, N, d, B, args.steps or steps, F=F, p=p, threads=threads,
                               warmup_steps=args.warmup or warmup, seed=s)
                for s in range(args.repeats)]
        for r in runs:
            print(line(name, r, ceiling), flush=True)
        med = statistics.median(r["sae_steps_per_s"] for r in runs)
        row = {"case": name, "median_sae_steps_per_s": med,
               "median_samples_per_s": med * B,
               "median_gflops": med / R * runs[0]["flops"] / 1e9, "runs": runs}
        if ceiling:
            row["share_of_ceiling"] = row["median_gflops"] / ceiling
        if args.repeats > 1:
            print(f"{name:<6} median of {args.repeats}: {med:,.0f} SAE-steps/s, "
                  f"{row['median_gflops']:.1f} GFLOP/s")
        results.append(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "baseline_torch_sae", "threads": threads,
                       "cpu_count": _cpu_count(), "platform": platform.platform(),
                       "ceiling_gflops": ceiling, "ceiling": measured,
                       "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
