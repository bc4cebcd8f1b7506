"""Baseline: the residual MLP of "compressed computation", trained the usual PyTorch way.

Our own implementation of how the public code of Braun et al. 2025 (APD) and Bhagat et
al. 2025 trains this model: one `nn.Module`, ONE model trained at a time, a fresh batch
drawn with torch every step, AdamW with a cosine learning rate. (The project's JAX side
trains thousands of such models at once; see `residual_throughput.py`.)

The model (the `[residual]` table of the sweep engine, task identity_relu, W_U = W_Eᵀ):

    W_E      [d_embed, n]     Gaussian, columns normalised to unit norm, fixed (a buffer)
    layer l: W_in_l [k_l, d_embed], b_in_l [k_l], W_out_l [d_embed, k_l], b_out_l [d_embed]
             (nn.Linear layers: torch's default init, kaiming-uniform weights and biases)
    r_0      = W_E x;   r_l = r_{l-1} + W_out_l ReLU(W_in_l r_{l-1} + b_in_l) + b_out_l
    ŷ        = W_Eᵀ r_L
    y        = x + ReLU(x) + s (W_EᵀW_E − I) x        (s = label_mixing, 0 by default)
    loss     = mean over the batch and the n outputs of (ŷ − y)²   (importance 1)
    x        each feature active with probability p, active values Uniform[-1, 1)
    AdamW(lr 3e-3, weight_decay 0.01, torch's betas), cosine decay of the lr to 0 over
    the run's steps (the paper's setting: batch 2048, feature probability 0.01)

Model-steps/s = steps / seconds (one model-step: one optimisation step of one model on a
batch of B samples); also per CPU-second of the process (steps / CPU time), which other
work on a shared host disturbs less (threads that spin while waiting count as busy).

FLOPs (`matmul_flops`) count the matmuls of the plain formulation above, per step:
embed 2·B·n·D (forward only: W_E is fixed and x needs no gradient), per layer W_in
4·B·D·k (forward and weight gradient; r_0 needs no gradient, but r_l for l ≥ 1 does: +2·B·D·k
for every layer after the first), W_out 6·B·k·D (forward, weight and input gradient),
unembed 4·B·D·n (forward and input gradient). The same count is used for the JAX side,
whatever it computes.

`--check` compares the loss and gradients of one batch with a numpy implementation
written below from the definitions above (float64), for the torch model in float64 and
in float32.

torch is imported lazily; without it the CLI prints an install hint and exits 2.

Usage:
    python benchmarks/baseline_torch_residual.py                      # the cases, 2 threads
    python benchmarks/baseline_torch_residual.py --only braun --threads 1 2 --repeats 3
    python benchmarks/baseline_torch_residual.py --check
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

from baseline_torch import _cpu_count, _torch, case_parser, float64_verdict  # noqa: E402

INSTALL_HINT = 'PyTorch is not installed; install the benchmark extras with: pip install -e ".[bench]"'

LR = 3e-3
WEIGHT_DECAY = 0.01

# name: the model and data of one case, with the timed and untimed torch steps. "braun" is
# the paper's 1-layer model (n = 100, d_embed = 1000, d_mlp = 50, p = 0.01, batch 2048);
# "braun-2layer" splits the 50 neurons 25 + 25 over two layers.
CASES = {
    "braun": {"n": 100, "d_embed": 1000, "d_mlp": 50, "n_layers": 1, "p": 0.01,
              "batch": 2048, "steps": 40, "warmup": 3},
    "braun-2layer": {"n": 100, "d_embed": 1000, "d_mlp": 50, "n_layers": 2, "p": 0.01,
                     "batch": 2048, "steps": 40, "warmup": 3},
}



def split(d_mlp: int, n_layers: int) -> list[int]:
    """The even split of d_mlp neurons over n_layers (the `[residual]` default)."""
    base, extra = divmod(d_mlp, n_layers)
    return [base + (i < extra) for i in range(n_layers)]


def matmul_flops(case: str | dict) -> float:
    """Matmul FLOPs of one training step of one model of `case` (see the module doc)."""
    c = CASES[case] if isinstance(case, str) else case
    B, n, D = c["batch"], c["n"], c["d_embed"]
    flops = 2 * B * n * D + 4 * B * D * n                 # embed; unembed
    for l, k in enumerate(split(c["d_mlp"], c["n_layers"])):
        flops += (4 + 2 * (l > 0)) * B * D * k + 6 * B * k * D
    return float(flops)


def make_model(n: int, d_embed: int, d_mlp: int, n_layers: int, seed: int = 0):
    """The residual MLP as one nn.Module (W_E a fixed buffer, W_U = W_Eᵀ)."""
    torch = _torch()
    nn = torch.nn

    class MLP(nn.Module):
        def __init__(self, d: int, k: int):
            super().__init__()
            self.W_in = nn.Linear(d, k)
            self.W_out = nn.Linear(k, d)

        def forward(self, r):
            return self.W_out(torch.relu(self.W_in(r)))

    class ResidualMLP(nn.Module):
        def __init__(self):
            super().__init__()
            gen = torch.Generator().manual_seed(seed)
            W_E = torch.randn(d_embed, n, generator=gen)
            self.register_buffer("W_E", W_E / W_E.norm(dim=0, keepdim=True))  # [D, n]
            self.layers = nn.ModuleList(MLP(d_embed, k) for k in split(d_mlp, n_layers))

        def forward(self, x):                       # x [B, n] -> ŷ [B, n]
            r = x @ self.W_E.T                      # [B, D]
            for mlp in self.layers:
                r = r + mlp(r)
            return r @ self.W_E                     # W_U r with W_U = W_Eᵀ

    torch.manual_seed(seed)  # nn.Linear's init draws from the global generator
    return ResidualMLP()


def labels(x, W_E, label_mixing: float = 0.0):
    """y = x + ReLU(x) + s (W_EᵀW_E − I) x, for x [B, n]."""
    torch = _torch()
    y = x + torch.relu(x)
    if label_mixing:
        y = y + label_mixing * ((x @ W_E.T) @ W_E - x)
    return y


def sample(batch: int, n: int, p: float, gen):
    """x [B, n]: each feature active with probability p, active values Uniform[-1, 1)."""
    torch = _torch()
    active = torch.rand(batch, n, generator=gen) < p
    values = 2 * torch.rand(batch, n, generator=gen) - 1
    return torch.where(active, values, torch.zeros((), dtype=values.dtype))


def cosine_lr(step: int, steps: int, lr: float = LR) -> float:
    """Cosine decay from lr to 0 over `steps` steps."""
    return lr * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))


def torch_residual_rate(case: str, steps: int | None = None, threads: int | None = None, *,
                        warmup_steps: int | None = None, seed: int = 0,
                        label_mixing: float = 0.0, total_steps: int = 10_000) -> dict:
    """Time `steps` AdamW steps of ONE residual MLP of `case` (after `warmup_steps`
    untimed ones), the usual training loop: fresh batch, forward, loss, backward, step.

    The lr follows the cosine of a `total_steps` run (set every step, as the public code
    does). Returns model_steps_per_s, samples_per_s, seconds, flops (one step), gflops,
    cores_busy, first/final loss, threads and the case.
    """
    torch = _torch()
    c = CASES[case]
    steps = c["steps"] if steps is None else int(steps)
    warmup_steps = c["warmup"] if warmup_steps is None else int(warmup_steps)
    threads = _cpu_count() if threads is None else int(threads)
    torch.set_num_threads(threads)
    model = make_model(c["n"], c["d_embed"], c["d_mlp"], c["n_layers"], seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed + 1)

    def step(i: int):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(i, total_steps)
        x = sample(c["batch"], c["n"], c["p"], gen)
        y = labels(x, model.W_E, label_mixing)
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    first = float(step(0).detach())
    for i in range(1, warmup_steps):
        step(i)
    t0, cpu = time.perf_counter(), time.process_time()
    for i in range(warmup_steps, warmup_steps + steps):
        loss = step(i)
    seconds = time.perf_counter() - t0  # CPU torch is synchronous
    busy = (time.process_time() - cpu) / seconds
    flops = matmul_flops(case)
    return {
        "case": case, **{k: c[k] for k in ("n", "d_embed", "d_mlp", "n_layers", "p", "batch")},
        "steps": steps, "warmup_steps": warmup_steps, "threads": threads,
        "label_mixing": label_mixing, "seconds": seconds, "cores_busy": busy,
        "model_steps_per_s": steps / seconds, "samples_per_s": steps * c["batch"] / seconds,
        "model_steps_per_cpu_s": steps / (busy * seconds),  # less disturbed by other work
        "flops": flops, "gflops": flops * steps / seconds / 1e9,
        "first_loss": first, "final_loss": float(loss.detach()),
        "torch_version": torch.__version__,
    }


# ---- the numpy reference of --check (float64, written from the module doc's definitions)

def numpy_loss_and_grads(params: dict, W_E: np.ndarray, x: np.ndarray,
                         label_mixing: float = 0.0) -> tuple[float, dict]:
    """Loss and gradients of one batch; params {W_in_l [k, D], b_in_l [k], W_out_l [D, k],
    b_out_l [D]}, W_E [D, n], x [B, n]."""
    x = x.astype(np.float64)
    W_E = W_E.astype(np.float64)
    p = {k: v.astype(np.float64) for k, v in params.items()}
    L = sum(k.startswith("W_in_") for k in p)
    B, n = x.shape
    G = W_E.T @ W_E
    y = x + np.maximum(x, 0) + label_mixing * (x @ (G - np.eye(n)))
    rs, zs, acts = [x @ W_E.T], [], []
    for l in range(L):
        z = rs[-1] @ p[f"W_in_{l}"].T + p[f"b_in_{l}"]
        a = np.maximum(z, 0)
        zs.append(z)
        acts.append(a)
        rs.append(rs[-1] + a @ p[f"W_out_{l}"].T + p[f"b_out_{l}"])
    y_hat = rs[-1] @ W_E
    loss = float(np.mean((y_hat - y) ** 2))
    grads = {}
    dr = (2 * (y_hat - y) / (B * n)) @ W_E.T                # dL/dr_L, [B, D]
    for l in reversed(range(L)):
        grads[f"W_out_{l}"] = dr.T @ acts[l]
        grads[f"b_out_{l}"] = dr.sum(0)
        dz = (dr @ p[f"W_out_{l}"]) * (zs[l] > 0)
        grads[f"W_in_{l}"] = dz.T @ rs[l]
        grads[f"b_in_{l}"] = dz.sum(0)
        dr = dr + dz @ p[f"W_in_{l}"]
    return loss, grads


def check(case: str = "braun", batch: int = 512, seed: int = 0) -> dict:
    """Loss and gradients of one batch (with every feature active with probability 0.05,
    so that many neurons fire) of the torch model, in float64 and float32, against
    `numpy_loss_and_grads`; returns {dtype: {name: max abs difference}} and prints it
    beside the largest |value| of each."""
    torch = _torch()
    c = CASES[case]
    out = {}
    for dtype in (torch.float64, torch.float32):
        model = make_model(c["n"], c["d_embed"], c["d_mlp"], c["n_layers"], seed).to(dtype)
        gen = torch.Generator().manual_seed(seed + 7)
        x = sample(batch, c["n"], 0.05, gen).to(dtype)
        for label_mixing in (0.0, 0.5):
            model.zero_grad(set_to_none=True)
            loss = ((model(x) - labels(x, model.W_E, label_mixing)) ** 2).mean()
            loss.backward()
            params, grads_t = {}, {}
            for l, mlp in enumerate(model.layers):
                for name, lin in (("in", mlp.W_in), ("out", mlp.W_out)):
                    params[f"W_{name}_{l}"] = lin.weight.detach().double().numpy()
                    params[f"b_{name}_{l}"] = lin.bias.detach().double().numpy()
                    grads_t[f"W_{name}_{l}"] = lin.weight.grad.double().numpy()
                    grads_t[f"b_{name}_{l}"] = lin.bias.grad.double().numpy()
            loss_np, grads_np = numpy_loss_and_grads(
                params, model.W_E.double().numpy(), x.double().numpy(), label_mixing)
            diffs = {"loss": (abs(float(loss.detach()) - loss_np), abs(loss_np))}
            for k in grads_np:
                diffs["grad " + k] = (float(np.abs(grads_t[k] - grads_np[k]).max()),
                                      float(np.abs(grads_np[k]).max()))
            name = f"{case}, {str(dtype).removeprefix('torch.')}, s={label_mixing}"
            print(f"  {name}:")
            for k, (d, m) in diffs.items():
                print(f"    {k:<12} max abs difference {d:.2e} (largest |value| {m:.2e})")
            out[name] = {k: d for k, (d, _) in diffs.items()}
    return out


def line(r: dict) -> str:
    return (f"torch {r['case']:<12} threads={r['threads']} steps={r['steps']:<4} | "
            f"{r['model_steps_per_s']:8.2f} model-steps/s | {r['samples_per_s']:.3g} samples/s | "
            f"{r['gflops']:6.1f} GFLOP/s | {r['cores_busy']:.2f} cores busy | "
            f"{r['seconds']:.1f} s | loss {r['final_loss']:.4g}")


def main(argv=None) -> int:
    ap = case_parser(__doc__, CASES)
    args = ap.parse_args(argv)

    try:
        torch = _torch()
    except ImportError:
        print(INSTALL_HINT)
        return 2
    if args.check:
        torch.set_num_threads(1)
        diffs = {k: v for case in CASES for k, v in check(case).items()}
        return float64_verdict(diffs)
    threads = args.threads or [_cpu_count()]
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{_cpu_count()} CPUs, lr={LR} wd={WEIGHT_DECAY}")
    rows = []
    for name in args.only or list(CASES):
        for t in threads:
            runs = [torch_residual_rate(name, args.steps, t, warmup_steps=args.warmup, seed=s)
                    for s in range(args.repeats)]
            for r in runs:
                print(line(r), flush=True)
            med = statistics.median(r["model_steps_per_s"] for r in runs)
            print(f"{name} threads={t}: median of {args.repeats}: {med:.2f} model-steps/s "
                  f"({med * matmul_flops(name) / 1e9:.1f} GFLOP/s)", flush=True)
            rows.append({"case": name, "threads": t, "median_model_steps_per_s": med,
                         "runs": runs})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "baseline_torch_residual", "cpu_count": _cpu_count(),
                       "platform": platform.platform(), "results": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
