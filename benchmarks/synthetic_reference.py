"""The project's synthetic world against SAELens's own synthetic generator: same law?

The two generators draw their random per-feature parameters (probabilities, forest,
copula, dictionary) from different RNGs, so what is compared is the *sampling law given
the same parameters*: the world is built here (`toymodels.dictionary.world.build_world`),
its parameters are exported to an .npz, and SAELens's `ActivationGenerator` (the same
firing probabilities, mean and std magnitudes, low-rank copula) with the
`hierarchy_modifier` of a `Hierarchy` built from the world's parents and exclusive
groups draws the same number of examples (`baseline_saelens_synthetic.py sample`, run in
the benchmark venv as a subprocess). Both sides' codes are counted by the same numpy code
(`synthetic_stats.Counter`) and compared with standard errors from the samples:

- each feature's firing rate (active: code > 0, SAELens's rule);
- the mean L0 (active features per example);
- P(child | parent) per child, and the count of child-without-parent examples (must be
  0 on both sides) and of exclusive groups with two children active (must be 0);
- the mean and the variance of each feature's active magnitudes;
- P(both active) for the 24 most strongly correlated pairs of free features.

Each per-feature statistic is summarised by its largest |z|, its shares of |z| > 3 and
> 4 (N(0, 1) gives 0.27% and 0.0063%), its mean z^2 (1 ± sqrt(2/m)) and a Bonferroni bound
(family-wise 1%: the largest of m N(0, 1) |z| exceeds it with probability 1%); a
statistic passes when its largest |z| is below the bound.

Deterministic checks, to float precision: the world's Zipf law against SAELens's
`zipfian_firing_probabilities` (same F, exponent, max, min), the world's compensated
probabilities against SAELens's `Hierarchy.compute_probability_correction_factors` of
that law on the world's forest, and `hidden(world, codes)` against SAELens's
`FeatureDictionary` with the world's directions and bias.

The dictionary's orthogonalisation plays no part in the law of the codes, so a preset's
`ortho_steps` is set to 0 here (it would cost minutes on CPU).

    python benchmarks/synthetic_reference.py --preset synthsaebench-4k \
        --preset synthsaebench-16k --preset mixed-4k --examples 300000 60000 150000 \
        --json benchmarks/results_synthetic_reference.json
    python benchmarks/synthetic_reference.py --preset synthsaebench-1k --examples 100000

Needs the benchmark venv with sae-lens (`--bench-python`, default /tmp/benchvenv/bin/python
or $BENCH_PYTHON).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic_stats import Counter, compare, indicator_correlation, load  # noqa: E402
from toymodels.dictionary import world as W  # noqa: E402
from toymodels.synthetic_config import parse_world  # noqa: E402
from toymodels.world_spec import WorldSpec  # noqa: E402

BENCH_PYTHON = os.environ.get("BENCH_PYTHON", "/tmp/benchvenv/bin/python")
BASELINE = HERE / "baseline_saelens_synthetic.py"

# A law the presets do not cover: branching drawn in a range, half the parents exclusive,
# binary gating (no scaling of children), constant means.
EXTRA = {
    "mixed-4k": {"n_features": 4096, "n_hidden": 256, "firing": "zipf", "zipf_exponent": 0.5,
                 "zipf_max": 0.4, "zipf_min": 5e-4, "mean_law": "constant", "mean": 1.0,
                 "std_law": "folded_normal", "std": [0.5, 0.5], "roots": 32,
                 "branching": [2, 8], "depth": 3, "exclusive": 0.5, "compensate": True,
                 "rank": 25, "correlation_scale": 0.1, "bias": 1.0},
}


def preset(name: str) -> tuple[WorldSpec, int]:
    """(spec, seed) of a `[synthetic]` preset (toymodels.synthetic_config.PRESETS) or of
    one of EXTRA, through the table's own parser."""
    table = EXTRA[name] if name in EXTRA else {"preset": name}
    spec, seed, _ = parse_world(table, "synthetic_reference")
    return spec, seed


def export(world: W.World, spec: WorldSpec, path: Path) -> dict:
    """The world's parameters as the baseline reads them (module docstring of
    baseline_saelens_synthetic.py)."""
    group = np.asarray(world.group)
    F = group.shape[0]
    exclusive = np.zeros(F, bool)
    exclusive[np.unique(group[group >= 0])] = True
    factor = np.asarray(world.factor)
    arrays = {"probability": np.asarray(world.probability), "mean": np.asarray(world.mean),
              "std": np.asarray(world.std), "parent": np.asarray(world.parent, np.int64),
              "exclusive": exclusive, "scale_children": np.bool_(spec.scale_children),
              "corr_factor": factor,
              "corr_diag": (np.asarray(world.diag_sqrt, np.float64) ** 2).astype(np.float32),
              "truth": np.asarray(world.truth), "bias": np.asarray(world.bias)}
    np.savez(path, **arrays)
    return arrays


def correlated_pairs(world: W.World, rate: np.ndarray, n_pairs: int = 24,
                     head: int = 1024) -> np.ndarray:
    """[P, 2] the pairs of features without a parent (roots and free features) among the
    `head` most frequent with the largest |latent correlation| (factor @ factor^T), both
    firing at rate >= 1%."""
    parent = np.asarray(world.parent)
    free = np.flatnonzero((parent < 0) & (rate >= 0.01))[:head]
    if len(free) < 2 or world.factor.shape[1] == 0:
        return np.zeros((0, 2), np.int64)
    f = np.asarray(world.factor, np.float64)[free]
    rho = f @ f.T
    iu = np.triu_indices(len(free), 1)
    order = np.argsort(-np.abs(rho[iu]))[:n_pairs]
    return np.stack([free[iu[0][order]], free[iu[1][order]]], axis=1)


def our_counts(world, spec, examples: int, chunk: int, seed: int, pairs) -> tuple[dict, float]:
    sample = jax.jit(W.sample_codes, static_argnums=(1, 3))
    counter = Counter(np.asarray(world.parent), _exclusive(world), pairs)
    key = jax.random.key(seed)
    start, done, i = time.perf_counter(), 0, 0
    while done < examples:
        codes = np.asarray(sample(world, spec, jax.random.fold_in(key, i), chunk))
        n = min(chunk, examples - done)
        counter.add(codes[:n])
        done, i = done + n, i + 1
    return counter.result(), time.perf_counter() - start


def _exclusive(world) -> np.ndarray:
    group = np.asarray(world.group)
    ex = np.zeros(group.shape[0], bool)
    ex[np.unique(group[group >= 0])] = True
    return ex


def _run(args: list[str]) -> str:
    out = subprocess.run([BENCH_PYTHON, str(BASELINE), *args], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"baseline {args[0]} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def deterministic(world, spec, tmp: Path) -> dict:
    """Zipf law, compensation, decoding: ours against SAELens's, to float precision."""
    out = {}
    if spec.firing == "zipf":
        _run(["zipf", str(tmp / "zipf.npz"), "--features", str(spec.n_features),
              "--exponent", repr(spec.zipf_exponent), "--max-prob", repr(spec.zipf_max),
              "--min-prob", repr(spec.zipf_min), "--world", str(tmp / "world.npz")])
        with np.load(tmp / "zipf.npz") as f:
            ref = {k: f[k] for k in f.files}
        ours64 = W.zipf_probabilities(spec.n_features, spec.zipf_exponent, spec.zipf_max,
                                      spec.zipf_min)
        rel = lambda a, b: float(np.max(np.abs(np.asarray(a, np.float64) - b) / np.abs(b)))
        out["zipf"] = {
            "max_rel_diff_float64_law": rel(ours64, ref["zipf"].astype(np.float64)),
            "max_rel_diff_world_base_probability": rel(world.base_probability,
                                                       ref["zipf"].astype(np.float64)),
            "float32_eps": float(np.finfo(np.float32).eps),
            "note": "SAELens computes in float32 (torch), the world in float64 then float32"}
        if "compensated" in ref:
            out["compensation"] = {
                "max_rel_diff_world_probability": rel(world.probability,
                                                      ref["compensated"].astype(np.float64)),
                "clamped_at_1": int((ref["compensated"] >= 1).sum())}
    codes = np.asarray(jax.jit(W.sample_codes, static_argnums=(1, 3))(
        world, spec, jax.random.key(123), 512))
    np.savez(tmp / "codes.npz", codes=codes)
    _run(["decode", str(tmp / "world.npz"), str(tmp / "codes.npz"), str(tmp / "hidden.npz")])
    with np.load(tmp / "hidden.npz") as f:
        ref_h = f["hidden"]
    ours_h = np.asarray(W.hidden(world, jnp.asarray(codes)))
    out["decode"] = {"max_abs_diff": float(np.abs(ours_h - ref_h).max()),
                     "max_abs_hidden": float(np.abs(ref_h).max())}
    return out


def run_preset(name: str, examples: int, chunk: int, sample_seed: int, tmp: Path) -> dict:
    spec, seed = preset(name)
    spec = dataclasses.replace(spec, ortho_steps=0)
    t0 = time.perf_counter()
    world = W.build_world(spec, seed)
    build_s = time.perf_counter() - t0
    export(world, spec, tmp / "world.npz")
    det = deterministic(world, spec, tmp)
    # pairs from the drawn probabilities' rates of a small pilot of ours
    pilot, _ = our_counts(world, spec, min(examples, 20_000), chunk, sample_seed + 1, None)
    pairs = correlated_pairs(world, pilot["count"] / pilot["n"])
    np.save(tmp / "pairs.npy", pairs)
    # SAELens in the background while ours runs
    ref_cmd = [BENCH_PYTHON, str(BASELINE), "sample", str(tmp / "world.npz"),
               str(tmp / "ref.npz"), "--examples", str(examples), "--chunk", str(chunk),
               "--seed", str(sample_seed), "--pairs", str(tmp / "pairs.npy")]
    ref_proc = subprocess.Popen(ref_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ours, ours_s = our_counts(world, spec, examples, chunk, sample_seed + 2, pairs)
    stdout, stderr = ref_proc.communicate()
    if ref_proc.returncode:
        raise RuntimeError(f"baseline sample failed:\n{stderr[-3000:]}")
    ref_info = json.loads(stdout.strip().splitlines()[-1])
    ref = load(tmp / "ref.npz")
    cmp = compare(ours, ref, np.asarray(world.parent))
    corr = {"pairs": pairs.tolist(),
            "latent_rho": [float(np.dot(world.factor[i], world.factor[j])) for i, j in pairs],
            "indicator_corr_ours": indicator_correlation(ours, pairs).tolist(),
            "indicator_corr_saelens": indicator_correlation(ref, pairs).tolist()}
    n_children = int((np.asarray(world.parent) >= 0).sum())
    return {"preset": name, "spec": dataclasses.asdict(spec), "world_seed": seed,
            "sample_seed": sample_seed,
            "examples": examples, "build_seconds": build_s, "ours_seconds": ours_s,
            "saelens_seconds": ref_info["seconds"], "saelens_threads": ref_info["threads"],
            "children": n_children, "exclusive_groups": int(_exclusive(world).sum()),
            "deterministic": det, "summaries": cmp["summaries"], "means": cmp["means"],
            "correlated_pairs": corr,
            "largest_rate_z": _largest(cmp["per_feature"]["z_rate"], ours, ref, world),
            # each feature's count of active examples (of `examples`), for a re-check
            "per_feature_counts": {"ours": ours["count"].tolist(),
                                   "saelens": ref["count"].tolist()}}


def _largest(z, ours, ref, world, n: int = 5) -> list[dict]:
    """The n features of largest |z| of the firing rate: index, z, rates, parent, level."""
    z = np.nan_to_num(np.asarray(z))
    order = np.argsort(-np.abs(z))[:n]
    return [{"feature": int(i), "z": float(z[i]), "rate_ours": float(ours["count"][i] / ours["n"]),
             "rate_saelens": float(ref["count"][i] / ref["n"]),
             "parent": int(world.parent[i]), "level": int(world.level[i])} for i in order]


def table(r: dict) -> str:
    lines = [f"== {r['preset']}: F={r['spec']['n_features']} d={r['spec']['n_hidden']}, "
             f"{r['examples']:,} examples a side (ours {r['ours_seconds']:.0f} s, SAELens "
             f"{r['saelens_seconds']:.0f} s)",
             f"{'statistic':<44} {'tests':>6} {'max|z|':>7} {'bound':>6} {'>3SE':>8} "
             f"{'>4SE':>8} {'mean z2':>8} {'mean z':>7}  pass"]
    for s in r["summaries"]:
        if not s["tests"]:
            continue
        lines.append(f"{s['statistic']:<44} {s['tests']:>6} {s['max_abs_z']:>7.2f} "
                     f"{s['bonferroni_1pct']:>6.2f} {s['share_beyond_3']:>8.4%} "
                     f"{s['share_beyond_4']:>8.4%} {s['mean_z2']:>8.3f} {s['mean_z']:>7.3f}  "
                     f"{'yes' if s['pass'] else 'NO'}")
    lines.append("largest |z| of a firing rate: " + ", ".join(
        f"#{x['feature']} (level {x['level']}) z={x['z']:+.2f}" for x in r["largest_rate_z"]))
    m = r["means"]
    lines.append(f"mean L0: ours {m['mean_l0']['ours']:.4f} ± {m['mean_l0']['se_ours']:.4f}, "
                 f"SAELens {m['mean_l0']['saelens']:.4f} ± {m['mean_l0']['se_saelens']:.4f}")
    lines.append(f"mean P(child|parent): ours {m['mean_P_child_given_parent']['ours']:.4f}, "
                 f"SAELens {m['mean_P_child_given_parent']['saelens']:.4f}; child without parent: "
                 f"{m['child_active_without_parent']}; exclusive groups with 2+ active: "
                 f"{m['exclusive_groups_with_two_active']}")
    lines.append(f"pooled active magnitude mean: ours {m['pooled_active_magnitude_mean']['ours']:.4f}, "
                 f"SAELens {m['pooled_active_magnitude_mean']['saelens']:.4f}; variance: ours "
                 f"{m['pooled_active_magnitude_var']['ours']:.4f}, SAELens "
                 f"{m['pooled_active_magnitude_var']['saelens']:.4f}")
    c = r["correlated_pairs"]
    if c["pairs"]:
        lines.append("indicator correlation of the pairs (ours / SAELens), first 6: " + ", ".join(
            f"{a:.3f}/{b:.3f}" for a, b in zip(c["indicator_corr_ours"][:6],
                                               c["indicator_corr_saelens"][:6])))
    d = r["deterministic"]
    if "zipf" in d:
        lines.append(f"Zipf law vs zipfian_firing_probabilities: max rel diff "
                     f"{d['zipf']['max_rel_diff_world_base_probability']:.1e} (float32 eps "
                     f"{d['zipf']['float32_eps']:.1e})")
    if "compensation" in d:
        lines.append(f"compensated probabilities vs compute_probability_correction_factors: "
                     f"max rel diff {d['compensation']['max_rel_diff_world_probability']:.1e}")
    lines.append(f"hidden vs FeatureDictionary: max abs diff {d['decode']['max_abs_diff']:.1e} "
                 f"(|h| up to {d['decode']['max_abs_hidden']:.1f})")
    return "\n".join(lines)


def dumps(obj) -> str:
    """JSON, indented, with each list of plain numbers on one line (the per-feature
    counts would take a line per number)."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[\s*([-+0-9.eE,\s]+?)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


def _commit() -> str | None:
    """The checkout's commit (and whether it had local changes), for the record."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=HERE, capture_output=True, text=True).stdout.strip()
        return head + (" (with local changes)" if dirty else "")
    except OSError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", action="append",
                    help="a [synthetic] preset or one of EXTRA; default: synthsaebench-4k")
    ap.add_argument("--examples", type=int, nargs="+", default=[1_000_000],
                    help="examples a side, one per preset (or one for all)")
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    names = args.preset or ["synthsaebench-4k"]
    examples = args.examples * len(names) if len(args.examples) == 1 else args.examples
    results, commit = [], _commit()
    for name, n in zip(names, examples):
        with tempfile.TemporaryDirectory() as tmp:
            r = run_preset(name, n, args.chunk, args.seed, Path(tmp))
        print(table(r), flush=True)
        results.append(r)
        if args.json:  # after each preset, so that a long run keeps what it finished
            args.json.write_text(dumps({
                "benchmark": "synthetic_reference", "jax": jax.__version__,
                "commit": commit,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "load_average_after": os.getloadavg()[0], "results": results}))
    ok = all(s["pass"] for r in results for s in r["summaries"]) and all(
        r["means"]["child_active_without_parent"]["ours"] == 0
        and r["means"]["exclusive_groups_with_two_active"]["ours"] == 0 for r in results)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
