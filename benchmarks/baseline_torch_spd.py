"""Baseline: Stochastic Parameter Decomposition of a 5 -> 2 TMS model, the usual PyTorch way.

Our own implementation of SPD (Bushnaq, Braun & Sharkey 2025, arXiv 2506.20790) as its
public code runs it: ONE decomposition at a time, one nn.Module holding the subcomponents
and the causal-importance MLPs of every decomposed matrix, a fresh batch drawn with torch
every step, one Adam optimiser. (The project's JAX side decomposes thousands at once;
see `spd_throughput.py`.)

Target (default): the zoo's `intro_pentagon`, a trained 5 -> 2 relu_output toy model
(`toymodels/zoo_data/intro_pentagon.npz`: W [2, 5] on a pentagon, column norms 1.12-1.14,
biases about -0.24; trained at feature probability 0.05, the SPD paper's density), read
with numpy so that this script needs no JAX. Without the file, or with `--target hand`, a
hand-built pentagon: unit columns at angles 2πi/5, b = −0.1. Its forward pass

    x -> h = W_in x  (W_in = W [2, 5])  [-> h = I h  with identity=True, W_hidden = I_2]
      -> out = ReLU(W_out h + b)  (W_out = Wᵀ [5, 2], decomposed separately from W_in)

SPD, per decomposed matrix l (W_l [d_out, d_in]), with the paper's TMS_5-2 settings:
    subcomponents  U_l [C, d_out], V_l [C, d_in], C = 20; masked weight Σ_c m_c U_c V_cᵀ,
                   applied as ((a V_lᵀ) ⊙ m) U_l
    causal imp.    h_c = V_c · a (a: the TARGET model's input to W_l), per subcomponent an
                   MLP 1 -> 16 GELU -> 1; g_low = σ_lower(raw) for the masks, g_up =
                   σ_upper(raw) for the penalty, the paper's leaky hard sigmoids (slope 0.01
                   below 0 and above 1 respectively; their plain derivatives)
    masks          m = g_low + (1 − g_low) r, r ~ Uniform(0, 1), S = 1 sample
    losses         faithfulness Σ_l ||W_l − U_lᵀV_l||²_F / N (N: entries of the decomposed
                   matrices); stochastic recon MSE(out(all masked), out(target)); layer-wise
                   mean over l of MSE(out(only l masked), out(target)); importance
                   minimality mean over the batch of Σ_{l,c} |g_up|^p; MSE = mean over the
                   batch and the 5 outputs
    total          1·faithfulness + 1·recon + 1·layerwise + 3e-3·minimality, p = 1
    training       Adam, lr 1e-3 with cosine decay to 0, batch 4096, 40,000 steps; data:
                   each feature active with probability 0.05, Uniform[0, 1)
    init (a guess) V ~ N(0, 1/d_in), U ~ N(0, 1/C); gate MLPs: W1 ~ N(0, 1), W2 ~ N(0, 1/16),
                   biases 0

Decomposition-steps/s = steps / seconds; decompositions/hour = 3600 · rate / 40,000; also
per CPU-second of the process (steps / CPU time), which other work disturbs less.

`--check` compares the total loss and every gradient for one batch and one draw of r
against a numpy implementation (float64, forward and backward by hand) written below
from the definitions above, with and without the identity matrix.

torch is imported lazily; without it the CLI prints an install hint and exits 2.

Usage:
    python benchmarks/baseline_torch_spd.py --threads 2 1 --repeats 3
    python benchmarks/baseline_torch_spd.py --check
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
from pathlib import Path

import numpy as np

from baseline_torch import _cpu_count, _torch, case_parser, float64_verdict  # noqa: E402

INSTALL_HINT = 'PyTorch is not installed; install the benchmark extras with: pip install -e ".[bench]"'

ZOO_FILE = Path(__file__).resolve().parent.parent / "toymodels/zoo_data/intro_pentagon.npz"
PAPER_STEPS = 40_000      # the paper's TMS SPD run
LR = 1e-3
LEAK = 0.01               # slope of the leaky hard sigmoids
COEFFS = {"faithfulness": 1.0, "recon": 1.0, "layerwise": 1.0, "minimality": 3e-3}

# name: one decomposition of one case, with the timed and untimed steps.
CASES = {
    "tms-5-2": {"identity": False, "C": 20, "d_gate": 16, "beta": 3e-3, "p_norm": 1.0,
                "feature_probability": 0.05, "batch": 4096, "steps": 30, "warmup": 3},
    "tms-5-2-id": {"identity": True, "C": 20, "d_gate": 16, "beta": 3e-3, "p_norm": 1.0,
                   "feature_probability": 0.05, "batch": 4096, "steps": 30, "warmup": 3},
}



def target_weights(target: str = "zoo") -> tuple[np.ndarray, np.ndarray]:
    """(W [2, 5], b [5]) of the 5 -> 2 target: the zoo's intro_pentagon, or the hand-built
    pentagon (unit columns, b = −0.1) when asked or when the zoo file is missing."""
    if target == "zoo" and ZOO_FILE.exists():
        z = np.load(ZOO_FILE)
        return z["param/W"].astype(np.float32), z["param/b"].astype(np.float32)
    angles = 2 * np.pi * np.arange(5) / 5
    return np.stack([np.cos(angles), np.sin(angles)]).astype(np.float32), np.full(5, -0.1, np.float32)


def matrices(W: np.ndarray, identity: bool) -> list[tuple[str, np.ndarray]]:
    """The decomposed matrices in forward order, [(name, W_l [d_out, d_in])]."""
    mats = [("W_in", W)]
    if identity:
        mats.append(("W_hidden", np.eye(W.shape[0], dtype=W.dtype)))
    return mats + [("W_out", np.ascontiguousarray(W.T))]


def matmul_flops(case: str | dict, n: int = 5, d: int = 2) -> float:
    """Matmul-like FLOPs of one SPD step (forward and backward), the same count for both
    sides: per matrix, the subcomponents' inner activations and outputs (2·B·C·(d_in+d_out)
    each) in the target's CI pass (forward), the all-masked pass and the matrix's own
    layer-wise pass (forward, both input gradients and weight gradients: ×3), and the gate
    MLPs (2 · 2·B·C·d_gate, ×3)."""
    c = CASES[case] if isinstance(case, str) else case
    B, C, k = c["batch"], c["C"], c["d_gate"]
    dims = [(n, d)] + ([(d, d)] if c["identity"] else []) + [(d, n)]
    per = sum(2 * B * C * (a + b) for a, b in dims)
    return float(per * (1 + 3 * 2) + len(dims) * 3 * 4 * B * C * k)


def leaky_lower(x, torch):
    """σ_H,lower: 0.01x below 0, x on [0, 1], 1 above."""
    return torch.where(x < 0, LEAK * x, torch.clamp(x, max=1.0))


def leaky_upper(x, torch):
    """σ_H,upper: 0 below 0, x on [0, 1], 1 + 0.01(x − 1) above."""
    return torch.where(x > 1, 1 + LEAK * (x - 1), torch.clamp(x, min=0.0))


def make_spd(W: np.ndarray, b: np.ndarray, C: int, d_gate: int, identity: bool, seed: int = 0,
             dtype=None):
    """(target, components): the frozen target model and the SPD module of one
    decomposition."""
    torch = _torch()
    nn = torch.nn
    dtype = dtype or torch.float32

    class Target(nn.Module):
        def __init__(self):
            super().__init__()
            for name, M in matrices(W, identity):
                self.register_buffer(name, torch.tensor(M, dtype=dtype))
            self.register_buffer("b", torch.tensor(b, dtype=dtype))
            self.names = [name for name, _ in matrices(W, identity)]

        def weights(self):
            return [getattr(self, name) for name in self.names]

        def forward(self, x):
            """(out [B, n], the input of every matrix [a_l])."""
            acts, a = [], x
            for M in self.weights():
                acts.append(a)
                a = a @ M.T
            return torch.relu(a + self.b), acts

    class Components(nn.Module):
        """C rank-1 subcomponents of one matrix [d_out, d_in] and their gate MLPs."""

        def __init__(self, d_out: int, d_in: int, gen):
            super().__init__()
            self.V = nn.Parameter(torch.randn(C, d_in, generator=gen, dtype=dtype) / math.sqrt(d_in))
            self.U = nn.Parameter(torch.randn(C, d_out, generator=gen, dtype=dtype) / math.sqrt(C))
            self.w1 = nn.Parameter(torch.randn(C, d_gate, generator=gen, dtype=dtype))
            self.b1 = nn.Parameter(torch.zeros(C, d_gate, dtype=dtype))
            self.w2 = nn.Parameter(torch.randn(C, d_gate, generator=gen, dtype=dtype) / math.sqrt(d_gate))
            self.b2 = nn.Parameter(torch.zeros(C, dtype=dtype))

        def weight(self):
            return self.U.T @ self.V                                  # [d_out, d_in]

        def gate(self, a):
            """Raw causal-importance outputs [B, C] from the target's input a [B, d_in]."""
            h = a @ self.V.T                                          # [B, C]
            hidden = torch.nn.functional.gelu(h[..., None] * self.w1 + self.b1)  # [B, C, k]
            return (hidden * self.w2).sum(-1) + self.b2

        def forward(self, a, mask):
            return ((a @ self.V.T) * mask) @ self.U                   # [B, d_out]

    class SPD(nn.Module):
        def __init__(self):
            super().__init__()
            gen = torch.Generator().manual_seed(seed)
            self.parts = nn.ModuleList(Components(M.shape[0], M.shape[1], gen)
                                       for _, M in matrices(W, identity))

    return Target(), SPD()


def spd_loss(target, spd, x, rs, beta: float, p_norm: float):
    """Total SPD loss of a batch x [B, n] with the uniform draws rs ([B, C] per matrix),
    and its four terms (the module doc's definitions)."""
    torch = _torch()
    with torch.no_grad():
        out_target, acts = target(x)
    weights = target.weights()
    raw = [part.gate(a) for part, a in zip(spd.parts, acts)]
    g_low = [leaky_lower(z, torch) for z in raw]
    g_up = [leaky_upper(z, torch) for z in raw]
    masks = [g + (1 - g) * r for g, r in zip(g_low, rs)]

    def run(masked: set):
        a = x
        for l, (part, M) in enumerate(zip(spd.parts, weights)):
            a = part(a, masks[l]) if l in masked else a @ M.T
        return torch.relu(a + target.b)

    mse = lambda out: ((out - out_target) ** 2).mean()
    L = len(weights)
    n_params = sum(M.numel() for M in weights)
    terms = {
        "faithfulness": sum(((M - part.weight()) ** 2).sum()
                            for part, M in zip(spd.parts, weights)) / n_params,
        "recon": mse(run(set(range(L)))),
        "layerwise": sum(mse(run({l})) for l in range(L)) / L,
        "minimality": sum((g.abs() ** p_norm).sum(-1) for g in g_up).mean(),
    }
    total = (COEFFS["faithfulness"] * terms["faithfulness"] + COEFFS["recon"] * terms["recon"]
             + COEFFS["layerwise"] * terms["layerwise"] + beta * terms["minimality"])
    return total, terms


def sample(batch: int, n: int, p: float, gen):
    """x [B, n]: each feature active with probability p, active values Uniform[0, 1)."""
    torch = _torch()
    active = torch.rand(batch, n, generator=gen) < p
    values = torch.rand(batch, n, generator=gen)
    return torch.where(active, values, torch.zeros((), dtype=values.dtype))


def cosine_lr(step: int, steps: int, lr: float = LR) -> float:
    """Cosine decay from lr to 0 over `steps` steps."""
    return lr * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))


def torch_spd_rate(case: str, steps: int | None = None, threads: int | None = None, *,
                   warmup_steps: int | None = None, seed: int = 0, target: str = "zoo",
                   total_steps: int = PAPER_STEPS) -> dict:
    """Time `steps` Adam steps of ONE SPD decomposition of `case` (after `warmup_steps`
    untimed ones): fresh batch, target forward, gates, masks, the four losses, backward,
    step. Returns decomposition_steps_per_s, decompositions_per_hour (at the paper's
    40,000 steps), seconds, flops (one step), gflops, cores_busy, first/final loss."""
    torch = _torch()
    c = CASES[case]
    steps = c["steps"] if steps is None else int(steps)
    warmup_steps = c["warmup"] if warmup_steps is None else int(warmup_steps)
    threads = _cpu_count() if threads is None else int(threads)
    torch.set_num_threads(threads)
    W, b = target_weights(target)
    tgt, spd = make_spd(W, b, c["C"], c["d_gate"], c["identity"], seed)
    opt = torch.optim.Adam(spd.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed + 1)
    B, C, n = c["batch"], c["C"], W.shape[1]

    def step(i: int):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(i, total_steps)
        x = sample(B, n, c["feature_probability"], gen)
        rs = [torch.rand(B, C, generator=gen) for _ in spd.parts]
        loss, _ = spd_loss(tgt, spd, x, rs, c["beta"], c["p_norm"])
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
    seconds = time.perf_counter() - t0
    busy = (time.process_time() - cpu) / seconds
    rate = steps / seconds
    flops = matmul_flops(case, W.shape[1], W.shape[0])
    return {
        "case": case, "target": target, **{k: c[k] for k in CASES[case] if k not in ("steps", "warmup")},
        "steps": steps, "warmup_steps": warmup_steps, "threads": threads, "seconds": seconds,
        "cores_busy": busy, "decomposition_steps_per_s": rate,
        "decomposition_steps_per_cpu_s": rate / busy,  # less disturbed by other work
        "decompositions_per_hour": 3600 * rate / PAPER_STEPS, "paper_steps": PAPER_STEPS,
        "flops": flops, "gflops": flops * rate / 1e9,
        "first_loss": first, "final_loss": float(loss.detach()),
        "torch_version": torch.__version__,
    }


# ---- the numpy reference of --check (float64, forward and backward by hand)

_erf = np.vectorize(math.erf)


def _gelu(z):
    return 0.5 * z * (1 + _erf(z / math.sqrt(2)))


def _gelu_grad(z):
    return 0.5 * (1 + _erf(z / math.sqrt(2))) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def numpy_spd_loss_and_grads(params: list[dict], Ws: list[np.ndarray], b: np.ndarray,
                             x: np.ndarray, rs: list[np.ndarray], beta: float,
                             p_norm: float) -> tuple[float, list[dict]]:
    """Total loss and its gradients; params per matrix {U [C, d_out], V [C, d_in],
    w1 [C, k], b1 [C, k], w2 [C, k], b2 [C]}, Ws the target matrices [d_out, d_in] in
    forward order, x [B, n], rs [B, C] per matrix."""
    P = [{k: v.astype(np.float64) for k, v in p.items()} for p in params]
    Ws = [W.astype(np.float64) for W in Ws]
    x, b = x.astype(np.float64), b.astype(np.float64)
    rs = [r.astype(np.float64) for r in rs]
    L, (B, n) = len(Ws), x.shape
    grads = [{k: np.zeros_like(v) for k, v in p.items()} for p in P]

    acts, a = [], x                                   # the target's forward
    for W in Ws:
        acts.append(a)
        a = a @ W.T
    out_t = np.maximum(a + b, 0)

    pre, raw = [], []                                 # gates
    for p, a in zip(P, acts):
        h = a @ p["V"].T                              # [B, C]
        z = h[..., None] * p["w1"] + p["b1"]          # [B, C, k]
        pre.append((h, z))
        raw.append((_gelu(z) * p["w2"]).sum(-1) + p["b2"])
    g_low = [np.where(z < 0, LEAK * z, np.minimum(z, 1)) for z in raw]
    g_up = [np.where(z > 1, 1 + LEAK * (z - 1), np.maximum(z, 0)) for z in raw]
    masks = [g + (1 - g) * r for g, r in zip(g_low, rs)]
    dmask = [np.zeros_like(m) for m in masks]

    def run(masked: set, coeff: float) -> float:
        """MSE of one masked forward pass; adds coeff × its gradients into grads/dmask."""
        a, tape = x, []
        for l in range(L):
            if l in masked:
                h = a @ P[l]["V"].T
                tape.append((a, h))
                a = (h * masks[l]) @ P[l]["U"]
            else:
                tape.append((a, None))
                a = a @ Ws[l].T
        z = a + b
        out = np.maximum(z, 0)
        loss = float(np.mean((out - out_t) ** 2))
        da = coeff * 2 * (out - out_t) / (B * n) * (z > 0)
        for l in reversed(range(L)):
            a_in, h = tape[l]
            if h is None:
                da = da @ Ws[l]
                continue
            q = h * masks[l]
            grads[l]["U"] += q.T @ da
            dq = da @ P[l]["U"].T
            dmask[l] += dq * h
            dh = dq * masks[l]
            grads[l]["V"] += dh.T @ a_in
            da = dh @ P[l]["V"]
        return loss

    recon = run(set(range(L)), COEFFS["recon"])
    layerwise = sum(run({l}, COEFFS["layerwise"] / L) for l in range(L)) / L

    n_params = sum(W.size for W in Ws)
    faith = 0.0
    for l, (p, W) in enumerate(zip(P, Ws)):
        E = W - p["U"].T @ p["V"]
        faith += float((E ** 2).sum()) / n_params
        grads[l]["U"] += COEFFS["faithfulness"] * -2 / n_params * (p["V"] @ E.T)
        grads[l]["V"] += COEFFS["faithfulness"] * -2 / n_params * (p["U"] @ E)

    minimality = float(sum((np.abs(g) ** p_norm).sum(-1) for g in g_up).mean())
    for l, (p, a) in enumerate(zip(P, acts)):
        z_raw = raw[l]
        d_low = dmask[l] * (1 - rs[l])
        d_raw = d_low * np.where(z_raw < 0, LEAK, np.where(z_raw <= 1, 1.0, 0.0))
        g = g_up[l]
        d_up = beta * p_norm * np.abs(g) ** (p_norm - 1) * np.sign(g) / B
        d_raw = d_raw + d_up * np.where(z_raw > 1, LEAK, np.where(z_raw >= 0, 1.0, 0.0))
        h, z = pre[l]
        grads[l]["w2"] += (d_raw[..., None] * _gelu(z)).sum(0)
        grads[l]["b2"] += d_raw.sum(0)
        dz = d_raw[..., None] * p["w2"] * _gelu_grad(z)
        grads[l]["w1"] += (dz * h[..., None]).sum(0)
        grads[l]["b1"] += dz.sum(0)
        dh = (dz * p["w1"]).sum(-1)
        grads[l]["V"] += dh.T @ a

    total = (COEFFS["faithfulness"] * faith + COEFFS["recon"] * recon
             + COEFFS["layerwise"] * layerwise + beta * minimality)
    return total, grads


def check(batch: int = 256, seed: int = 0) -> dict:
    """The torch loss and gradients (float64 and float32) of one batch and one draw of r
    against `numpy_spd_loss_and_grads`, for both cases; the batch has every feature active
    with probability 0.3 and the gate biases are spread so that the causal importances
    fall below 0, inside [0, 1] and above 1. Returns {case/dtype: {name: max abs diff}}."""
    torch = _torch()
    W, b = target_weights("zoo")
    out = {}
    for case, c in CASES.items():
        for dtype in (torch.float64, torch.float32):
            tgt, spd = make_spd(W, b, c["C"], c["d_gate"], c["identity"], seed, dtype)
            gen = torch.Generator().manual_seed(seed + 3)
            with torch.no_grad():
                for part in spd.parts:
                    part.b2.copy_(torch.linspace(-1.5, 2.5, c["C"], dtype=dtype))
                    part.b1.copy_(0.3 * torch.randn(part.b1.shape, generator=gen, dtype=dtype))
            x = sample(batch, W.shape[1], 0.3, gen).to(dtype)
            rs = [torch.rand(batch, c["C"], generator=gen, dtype=dtype) for _ in spd.parts]
            loss, _ = spd_loss(tgt, spd, x, rs, c["beta"], c["p_norm"])
            loss.backward()
            with torch.no_grad():
                raw = torch.cat([part.gate(a).flatten() for part, a in zip(spd.parts, tgt(x)[1])])
            regions = [float((raw < 0).double().mean()), float(((raw >= 0) & (raw <= 1)).double().mean()),
                       float((raw > 1).double().mean())]
            names = ("U", "V", "w1", "b1", "w2", "b2")
            params = [{k: getattr(part, k).detach().double().numpy() for k in names}
                      for part in spd.parts]
            loss_np, grads_np = numpy_spd_loss_and_grads(
                params, [M.double().numpy() for M in tgt.weights()], tgt.b.double().numpy(),
                x.double().numpy(), [r.double().numpy() for r in rs], c["beta"], c["p_norm"])
            diffs = {"loss": (abs(float(loss.detach()) - loss_np), abs(loss_np))}
            for l, part in enumerate(spd.parts):
                for k in names:
                    g_t = getattr(part, k).grad.double().numpy()
                    diffs[f"grad {tgt.names[l]}.{k}"] = (float(np.abs(g_t - grads_np[l][k]).max()),
                                                         float(np.abs(grads_np[l][k]).max()))
            key = f"{case}, {str(dtype).removeprefix('torch.')}"
            worst = max(diffs.items(), key=lambda kv: kv[1][0] / max(kv[1][1], 1e-30))
            print(f"  {key}: loss {loss_np:.6g}, |Δloss| {diffs['loss'][0]:.2e}; largest grad "
                  f"difference {max(d for k, (d, _) in diffs.items() if k != 'loss'):.2e}; "
                  f"worst relative: {worst[0]} {worst[1][0]:.2e} of {worst[1][1]:.2e}; gate outputs "
                  f"below 0 / in [0, 1] / above 1: {regions[0]:.2f} / {regions[1]:.2f} / {regions[2]:.2f}")
            out[key] = {k: d for k, (d, _) in diffs.items()}
    return out


def line(r: dict) -> str:
    return (f"torch {r['case']:<11} threads={r['threads']} steps={r['steps']:<4} | "
            f"{r['decomposition_steps_per_s']:8.2f} decomposition-steps/s | "
            f"{r['decompositions_per_hour']:6.2f} decompositions/h | {r['gflops']:5.2f} GFLOP/s | "
            f"{r['cores_busy']:.2f} cores busy | {r['seconds']:.1f} s | loss {r['final_loss']:.4g}")


def main(argv=None) -> int:
    ap = case_parser(__doc__, CASES)
    ap.add_argument("--target", choices=("zoo", "hand"), default="zoo")
    args = ap.parse_args(argv)

    try:
        torch = _torch()
    except ImportError:
        print(INSTALL_HINT)
        return 2
    if args.check:
        torch.set_num_threads(1)
        diffs = check()
        return float64_verdict(diffs)
    threads = args.threads or [_cpu_count()]
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{_cpu_count()} CPUs, target {args.target}")
    rows = []
    for name in args.only or list(CASES):
        for t in threads:
            runs = [torch_spd_rate(name, args.steps, t, warmup_steps=args.warmup, seed=s,
                                   target=args.target) for s in range(args.repeats)]
            for r in runs:
                print(line(r), flush=True)
            med = statistics.median(r["decomposition_steps_per_s"] for r in runs)
            print(f"{name} threads={t}: median of {args.repeats}: {med:.2f} "
                  f"decomposition-steps/s, {3600 * med / PAPER_STEPS:.2f} decompositions/h",
                  flush=True)
            rows.append({"case": name, "threads": t, "median_decomposition_steps_per_s": med,
                         "median_decompositions_per_hour": 3600 * med / PAPER_STEPS,
                         "runs": runs})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "baseline_torch_spd", "cpu_count": _cpu_count(),
                       "platform": platform.platform(), "results": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
