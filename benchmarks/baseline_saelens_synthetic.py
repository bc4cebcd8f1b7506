"""SAELens's own synthetic generator and trainer, fed a world exported by the project.

Runs in the benchmark venv (torch + sae-lens; no JAX, no toymodels): the project's side
(`synthetic_reference.py`, `synthetic_sae_throughput.py`) exports its world's
per-feature parameters to an .npz and runs this file as a subprocess. Nothing here is
a copy of SAELens: SAELens's objects are built from the exported parameters and called.

The world .npz holds: probability [F] (the base firing probability of each feature,
before the hierarchy acts), mean [F], std [F] (of the magnitude), parent [F] (int, -1
for none), exclusive [F] (bool: the feature's children are mutually exclusive),
scale_children (bool: a child's value is multiplied by its parent's value / the
parent's mean), optionally corr_factor [F, r] and corr_diag [F] (a low-rank Gaussian
copula), truth [F, d] and bias [d].

Sub-commands:

    sample WORLD.npz OUT.npz --examples N [--chunk C] [--seed S] [--pairs P.npy]
        draws N examples of codes from `ActivationGenerator` (the exported
        probabilities, mean and std magnitudes, low-rank correlation) with the
        `hierarchy_modifier` of a `Hierarchy` built from parent/exclusive, and writes
        their `synthetic_stats.Counter` counts.
    zipf OUT.npz --features F --exponent A --max-prob P --min-prob Q [--world WORLD.npz]
        `zipfian_firing_probabilities(F, A, P, Q)` and, with a world, the hierarchy's
        `compute_probability_correction_factors` of those probabilities.
    decode WORLD.npz CODES.npz OUT.npz
        `FeatureDictionary` (truth, bias) applied to the codes in CODES.npz ("codes").
    train WORLD.npz --width N --k K --batch B --steps S --warmup W --json OUT
        times SAELens's `SyntheticSAERunner` (its `SAETrainer`, its
        `SyntheticActivationIterator` over the world's `SyntheticModel`) training one
        BatchTopK SAE, as SAELens runs one: steps/s over steps W..S.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_stats import Counter, save  # noqa: E402


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def load_world(path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def build_hierarchy(parent, exclusive, scale_children=False):
    """A SAELens `Hierarchy` with one tree per root that has children; children in index
    order; `mutually_exclusive_children` where exclusive (and >= 2 children);
    `scale_children_by_parent` on every parent if scale_children."""
    from sae_lens.synthetic import Hierarchy, HierarchyNode, hierarchy_modifier

    parent = np.asarray(parent)
    F = len(parent)
    kids = [[] for _ in range(F)]
    for c in np.flatnonzero(parent >= 0):
        kids[parent[c]].append(int(c))

    def node(i):
        children = [node(c) for c in kids[i]]
        return HierarchyNode(feature_index=i, children=children,
                             mutually_exclusive_children=bool(exclusive[i]) and len(children) >= 2,
                             scale_children_by_parent=bool(scale_children) and bool(children))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    roots = [node(i) for i in range(F) if parent[i] < 0 and kids[i]]
    return Hierarchy(roots=roots, modifier=hierarchy_modifier(roots) if roots else None)


def build_generator(world: dict):
    import torch
    from sae_lens.synthetic import ActivationGenerator

    hierarchy = build_hierarchy(world["parent"], world["exclusive"],
                                bool(world.get("scale_children", False)))
    corr = None
    if "corr_factor" in world and world["corr_factor"].size:
        corr = (torch.tensor(world["corr_factor"], dtype=torch.float32),
                torch.tensor(world["corr_diag"], dtype=torch.float32))
    gen = ActivationGenerator(
        num_features=len(world["probability"]),
        firing_probabilities=torch.tensor(world["probability"], dtype=torch.float32),
        std_firing_magnitudes=torch.tensor(world["std"], dtype=torch.float32),
        mean_firing_magnitudes=torch.tensor(world["mean"], dtype=torch.float32),
        modify_activations=hierarchy.modifier,
        correlation_matrix=corr)
    return gen, hierarchy


def build_model(world: dict):
    """SAELens's `SyntheticModel` around the exported world (no orthogonalisation: the
    dictionary is the exported one)."""
    import torch
    from sae_lens.synthetic import FeatureDictionary, SyntheticModel, SyntheticModelConfig

    F, d = world["truth"].shape
    gen, hierarchy = build_generator(world)
    fd = FeatureDictionary(F, d, bias=bool(np.any(world["bias"] != 0)), initializer=None)
    fd.feature_vectors.data = torch.tensor(world["truth"], dtype=torch.float32)
    fd.bias.data = torch.tensor(world["bias"], dtype=torch.float32)
    cfg = SyntheticModelConfig(num_features=F, hidden_dim=d,
                               bias=float(np.linalg.norm(world["bias"])))
    return SyntheticModel(cfg, feature_dict=fd, activation_generator=gen,
                          hierarchy=hierarchy)


def cmd_sample(args) -> int:
    import torch

    torch.set_num_threads(args.threads or _cores())
    torch.manual_seed(args.seed)
    world = load_world(args.world)
    gen, _ = build_generator(world)
    pairs = np.load(args.pairs) if args.pairs else None
    counter = Counter(world["parent"], world["exclusive"], pairs)
    start, done = time.perf_counter(), 0
    while done < args.examples:
        n = min(args.chunk, args.examples - done)
        counter.add(gen.sample(n).numpy())
        done += n
    st = counter.result()
    save(args.out, st)
    print(json.dumps({"examples": done, "seconds": time.perf_counter() - start,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))
    return 0


def cmd_zipf(args) -> int:
    import torch
    from sae_lens.synthetic import zipfian_firing_probabilities

    probs = zipfian_firing_probabilities(args.features, exponent=args.exponent,
                                         max_prob=args.max_prob, min_prob=args.min_prob)
    out = {"zipf": probs.numpy()}
    if args.world:
        world = load_world(args.world)
        _, hierarchy = build_generator(world)
        if hierarchy.roots:
            factors = hierarchy.compute_probability_correction_factors(probs)
            out["correction"] = factors.numpy()
            out["compensated"] = (probs * factors).clamp(max=1.0).numpy()
    np.savez(args.out, **out)
    print(json.dumps({"torch": torch.__version__}))
    return 0


def cmd_decode(args) -> int:
    import torch

    world = load_world(args.world)
    model = build_model(world)
    with np.load(args.codes) as f:
        codes = torch.tensor(f["codes"], dtype=torch.float32)
    with torch.no_grad():
        h = model.feature_dict(codes).numpy()
    np.savez(args.out, hidden=h)
    return 0


class _Timed:
    """Wraps SAELens's SyntheticActivationIterator: the time of every batch request."""

    def __init__(self, inner):
        self.inner, self.wall, self.cpu = inner, [], []

    def __iter__(self):
        return self

    def __next__(self):
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())
        return next(self.inner)


def cmd_train(args) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    import sae_lens
    import sae_lens.synthetic.synthetic_sae_runner as runner_mod
    from sae_lens.config import LoggingConfig
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAEConfig
    from sae_lens.synthetic import SyntheticSAERunner, SyntheticSAERunnerConfig

    threads = args.threads or _cores()
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    world = load_world(args.world)
    F, d = world["truth"].shape
    model = build_model(world)
    timed = []
    base = runner_mod.SyntheticActivationIterator

    def make_iterator(*a, **k):
        timed.append(_Timed(base(*a, **k)))
        return timed[-1]

    runner_mod.SyntheticActivationIterator = make_iterator
    results = []
    for rep in range(args.repeats):
        cfg = SyntheticSAERunnerConfig(
            synthetic_model=model.cfg,
            sae=BatchTopKTrainingSAEConfig(d_in=d, d_sae=args.width, k=args.k),
            training_samples=args.steps * args.batch, batch_size=args.batch,
            lr=args.lr, device="cpu", output_path=None, checkpoint_path=None,
            eval_samples=0, run_final_eval=False,
            logger=LoggingConfig(log_to_wandb=False))
        start = time.perf_counter()
        SyntheticSAERunner(cfg, override_synthetic_model=model).run()
        total = time.perf_counter() - start
        t = timed[-1]
        w0, w1 = args.warmup, len(t.wall) - 1
        seconds = t.wall[w1] - t.wall[w0]
        steps = w1 - w0
        flops = 2 * args.batch * F * d + 10 * args.batch * d * args.width
        results.append({
            "repeat": rep, "steps_timed": steps, "seconds": seconds,
            "sae_steps_per_s": steps / seconds, "samples_per_s": steps * args.batch / seconds,
            "cores_busy": (t.cpu[w1] - t.cpu[w0]) / seconds,
            "gflops": flops * steps / seconds / 1e9, "flops": flops,
            "run_seconds": total})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    out = {"trainer": "sae_lens.synthetic.SyntheticSAERunner (SAETrainer, "
                      "SyntheticActivationIterator), BatchTopK, one SAE",
           "sae_lens": sae_lens.__version__, "torch": torch.__version__,
           "threads": threads, "F": F, "d": d, "width": args.width, "k": args.k,
           "batch": args.batch, "steps": args.steps, "warmup": args.warmup, "lr": args.lr,
           "runs": results}
    Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("world")
    s.add_argument("out")
    s.add_argument("--examples", type=int, default=100_000)
    s.add_argument("--chunk", type=int, default=8192)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--pairs")
    s.add_argument("--threads", type=int)
    z = sub.add_parser("zipf")
    z.add_argument("out")
    z.add_argument("--features", type=int, required=True)
    z.add_argument("--exponent", type=float, required=True)
    z.add_argument("--max-prob", type=float, required=True)
    z.add_argument("--min-prob", type=float, required=True)
    z.add_argument("--world")
    dc = sub.add_parser("decode")
    dc.add_argument("world")
    dc.add_argument("codes")
    dc.add_argument("out")
    t = sub.add_parser("train")
    t.add_argument("world")
    t.add_argument("--width", type=int, required=True)
    t.add_argument("--k", type=float, required=True)
    t.add_argument("--batch", type=int, default=1024)
    t.add_argument("--steps", type=int, default=60)
    t.add_argument("--warmup", type=int, default=10)
    t.add_argument("--repeats", type=int, default=1)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int)
    t.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    return {"sample": cmd_sample, "zipf": cmd_zipf, "decode": cmd_decode,
            "train": cmd_train}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
