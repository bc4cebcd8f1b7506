"""The known-answer suite (`toymodels.llc_suite`) at the LLC defaults and at candidate
default sets: λ̂ / λ − 1 per case, setting and key, with the settings diagnostic
(settings_ratio, relaxation) and the trust flag.

Every case runs at n = 1000 (nβ = n / ln n = 144.8) for each candidate in CANDIDATES
and at the defaults with the case's own ``needs`` (the settings it needs beyond the
defaults), 3 keys each; the singular cases also at n = 10000. For the 2-D normal
crossings the exact posterior mean of nβ L (quadrature) separates the finite-n, finite-γ
part of the error from the sampler's. A candidate with ``scale`` runs
``epsilon="auto"`` at that scale (0.2 in `toymodels.sgld`) through `sgld.estimate`.

Usage:
    python benchmarks/llc_suite.py --json benchmarks/results_llc_suite.json \
        --markdown benchmarks/results_llc_suite.md
    python benchmarks/llc_suite.py --cases quadratic-d2-k1 --keys 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from toymodels import llc_suite, sgld

#: name -> settings (chains 4, epsilon "auto" throughout).
CANDIDATES = {
    "old: gamma 100, 100 + 200": dict(gamma=100.0, burn_in=100, draws=200),  # before issue 25
    "gamma 10, 500 + 1000": dict(gamma=10.0, burn_in=500, draws=1000),
    "gamma 1, 500 + 1000": dict(gamma=1.0, burn_in=500, draws=1000),  # the defaults now
    "gamma 1, 1000 + 2000": dict(gamma=1.0, burn_in=1000, draws=2000),
    "gamma 1, 1000 + 2000, scale 0.1": dict(gamma=1.0, burn_in=1000, draws=2000, scale=0.1),
    "gamma 0.1, 1000 + 2000": dict(gamma=0.1, burn_in=1000, draws=2000),
}
NEEDS = "the case's needs"
LARGE_N = 10_000
TOLERANCE = 0.15

_estimate = jax.jit(sgld.estimate, static_argnames=("loss_fn", "chains", "draws", "burn_in",
                                                    "stochastic", "auto_step"))


def crossing_posterior_mean(powers, nbeta, gamma, m=5000):
    """E[nβ K] under exp(−nβ K − γ/2 |w|²) for the 2-D normal crossing
    K = w₁^{2 k₁} w₂^{2 k₂}: what a perfect sampler at these nβ, γ estimates (its
    distance to λ is the finite-n, finite-γ part of the error). A product rule on a
    log-spaced grid of the quadrant w ≥ 0 (the integrand is even in each w_j)."""
    k1, k2 = powers
    x = np.concatenate([[0.0], np.geomspace(1e-7, 9.0 / np.sqrt(gamma), m)])
    weights = np.gradient(x)
    num = den = 0.0
    for i in range(0, len(x), 500):
        w1, w2 = x[i:i + 500, None], x[None, :]
        K = w1 ** (2 * k1) * w2 ** (2 * k2)
        p = np.exp(-nbeta * K - 0.5 * gamma * (w1**2 + w2**2))
        p = p * weights[i:i + 500, None] * weights[None, :]
        num, den = num + np.sum(nbeta * K * p), den + np.sum(p)
    return float(num / den)


CROSSING_POWERS = {"crossing-w1^2w2^4": (1, 2), "crossing-w1^2w2^6": (1, 3),
                   "crossing-w2^2-flat": (0, 1)}


def posterior_means():
    """The crossings' E[nβ K] at n in (1000, LARGE_N) and gamma in (0.1, 1, 10, 100)."""
    return [{"case": name, "n": n, "gamma": g,
             "posterior_mean": crossing_posterior_mean(powers, sgld.default_nbeta(n), g)}
            for name, powers in CROSSING_POWERS.items() for n in (1000, LARGE_N)
            for g in (0.1, 1.0, 10.0, 100.0)]


def run(case, key, n, settings):
    """One estimate: `llc_suite.run_case`, or `sgld.estimate` at an auto scale."""
    settings = dict(settings)
    scale = settings.pop("scale", None)
    if scale is None:
        return llc_suite.run_case(case, key, n=n, **settings)
    return _estimate(case.loss, jnp.asarray(case.w_star), key, sgld.default_nbeta(n),
                     float(scale), float(settings["gamma"]), chains=4,
                     draws=settings["draws"], burn_in=settings["burn_in"], auto_step=True)


def measure(case, setting_name, settings, n, keys):
    rows = []
    for k in range(keys):
        start = time.perf_counter()
        r = run(case, jax.random.key(100 + k), n, settings)
        jax.block_until_ready(r.llc)
        rows.append({
            "key": 100 + k, "llc": float(r.llc), "llc_se": float(r.llc_se),
            "error": float(r.llc) / case.lam - 1.0,
            "settings_ratio": float(r.settings_ratio), "relaxation": float(r.relaxation),
            "epsilon": float(r.epsilon), "acceptance": float(r.acceptance),
            "trusted": bool(r.trusted), "seconds": time.perf_counter() - start,
        })
    errors = np.array([row["error"] for row in rows])
    steps = 4 * (settings.get("burn_in", 100) + settings.get("draws", 200))
    return {"case": case.name, "family": case.family, "lam": case.lam, "n": n,
            "setting": setting_name, "settings": settings, "steps": steps,
            "mean_error": float(np.mean(errors)), "max_abs_error": float(np.max(np.abs(errors))),
            "runs": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(llc_suite.case_names()))
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    results = []
    for name in args.cases:
        case = llc_suite.get_case(name)
        plans = [(s, CANDIDATES[s], 1000) for s in CANDIDATES]
        plans.append((NEEDS, dict(case.needs), 1000))
        if not case.regular:
            plans.append((NEEDS, dict(case.needs), LARGE_N))
        for setting_name, settings, n in plans:
            row = measure(case, setting_name, settings, n, args.keys)
            results.append(row)
            print(f"{name:22s} n={n:5d} {setting_name:34s} mean {row['mean_error']:+.3f} "
                  f"max|.| {row['max_abs_error']:.3f} ratio "
                  f"{row['runs'][0]['settings_ratio']:.3f} relax "
                  f"{row['runs'][0]['relaxation']:.3g} trusted "
                  f"{sum(r['trusted'] for r in row['runs'])}/{args.keys}", flush=True)
    out = {"jax": jax.__version__, "device": str(jax.devices()[0]),
           "machine": platform.machine(), "tolerance": TOLERANCE, "keys": args.keys,
           "candidates": CANDIDATES, "results": results,
           "crossing_posterior_means": posterior_means()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(results))
            f.write("\nNormal crossings, E[nβ K] of the exact posterior (quadrature):\n\n"
                    "| case | n | γ = 0.1 | 1 | 10 | 100 |\n|---|---|---|---|---|---|\n")
            means = out["crossing_posterior_means"]
            for name, n in dict.fromkeys((m["case"], m["n"]) for m in means):
                row = [m["posterior_mean"] for m in means if (m["case"], m["n"]) == (name, n)]
                f.write(f"| {name} | {n} | " + " | ".join(f"{v:.3f}" for v in row) + " |\n")


def markdown(results) -> str:
    """One row per case and n, one column per setting: mean λ̂ / λ − 1 over the keys
    (the largest |λ̂ / λ − 1| in brackets; * where a key's estimate was not trusted)."""
    settings = list(dict.fromkeys(r["setting"] for r in results))
    lines = ["| case | λ | n | " + " | ".join(settings) + " |",
             "|---|---|---|" + "---|" * len(settings)]
    for case, n in dict.fromkeys((r["case"], r["n"]) for r in results):
        cells = []
        for s in settings:
            row = next((r for r in results if (r["case"], r["n"], r["setting"]) == (case, n, s)),
                       None)
            if row is None:
                cells.append("")
                continue
            flag = "" if all(run["trusted"] for run in row["runs"]) else "*"
            cells.append(f"{row['mean_error']:+.0%} ({row['max_abs_error']:.0%}){flag}")
        lam = next(r["lam"] for r in results if r["case"] == case)
        lines.append(f"| {case} | {lam:g} | {n} | " + " | ".join(cells) + " |")
    costs = {s: next(r["steps"] for r in results if r["setting"] == s) for s in settings
             if s != NEEDS}
    lines.append("")
    lines.append("Steps per estimate (chains × (burn-in + draws)): "
                 + "; ".join(f"{s}: {c}" for s, c in costs.items()))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
