"""Sufficient statistics of sampled feature codes, and the comparison of two samplers.

numpy only (no JAX, no torch, no toymodels), so that the same code counts the samples of
both sides of `synthetic_reference.py`: the project's world (in the project's venv) and
SAELens's synthetic generator (`baseline_saelens_synthetic.py`, in the benchmark venv).
A feature is *active* in an example where its code is > 0 (SAELens's rule: its hierarchy
gates children on ``parent > 0``, and a magnitude the ReLU sends to 0 is inactive).

`Counter` takes chunks of codes [n, F] and keeps, per feature, the number of examples it
is active in and the first four power sums of its active magnitudes; the sum and sum of
squares of L0; per child (a feature with a parent), how often it is active with and
without its parent; per mutually exclusive group, how often more than one child is
active; and, for a few chosen pairs, how often both are active. `compare` turns two such
counts into z-scores (differences in standard errors, the standard errors from the
samples).
"""
from __future__ import annotations

import math

import numpy as np

STAT_KEYS = ("n", "count", "s1", "s2", "s3", "s4", "l0_sum", "l0_sq", "both", "orphan",
             "me_multi", "pair_both")


class Counter:
    """Accumulates the statistics of chunks of codes [n, F].

    parent: [F] int, -1 for a root; exclusive: [F] bool, True where the feature's
    children are mutually exclusive; pairs: [P, 2] int, the pairs whose co-activation to
    count.
    """

    def __init__(self, parent, exclusive, pairs=None):
        parent = np.asarray(parent, np.int64)
        exclusive = np.asarray(exclusive, bool)
        self.F = F = parent.shape[0]
        self.parent = parent
        self.children = np.flatnonzero(parent >= 0)
        self.group = np.where((parent >= 0) & exclusive[np.maximum(parent, 0)], parent, -1)
        self.me_parents = np.unique(self.group[self.group >= 0])
        self.pairs = np.zeros((0, 2), np.int64) if pairs is None else np.asarray(pairs, np.int64)
        self.n = 0
        self.count = np.zeros(F, np.int64)
        self.s = [np.zeros(F, np.float64) for _ in range(4)]
        self.l0_sum = 0
        self.l0_sq = 0
        self.both = np.zeros(F, np.int64)
        self.orphan = np.zeros(F, np.int64)
        self.multi = np.zeros(F, np.int64)
        self.pair_both = np.zeros(len(self.pairs), np.int64)

    def add(self, codes) -> None:
        codes = np.asarray(codes)
        n, F = codes.shape
        active = codes > 0
        rows, cols = np.nonzero(active)
        vals = codes[rows, cols].astype(np.float64)
        self.n += n
        self.count += np.bincount(cols, minlength=F)
        v = vals
        for k in range(4):
            self.s[k] += np.bincount(cols, weights=v, minlength=F)
            v = v * vals
        l0 = np.bincount(rows, minlength=n).astype(np.int64)
        self.l0_sum += int(l0.sum())
        self.l0_sq += int((l0 * l0).sum())
        par = self.parent[cols]
        is_child = par >= 0
        c_rows, c_cols, c_par = rows[is_child], cols[is_child], par[is_child]
        with_parent = active[c_rows, c_par]
        self.both += np.bincount(c_cols[with_parent], minlength=F)
        self.orphan += np.bincount(c_cols[~with_parent], minlength=F)
        grp = self.group[cols]
        in_group = grp >= 0
        if in_group.any():
            keys = rows[in_group].astype(np.int64) * F + grp[in_group]
            uniq, cnt = np.unique(keys, return_counts=True)
            self.multi += np.bincount(uniq[cnt > 1] % F, minlength=F)
        if len(self.pairs):
            self.pair_both += (active[:, self.pairs[:, 0]] & active[:, self.pairs[:, 1]]).sum(0)

    def result(self) -> dict:
        """The counts; `both` and `orphan` per child (children in index order), `me_multi`
        per exclusive parent (in index order)."""
        return {"n": np.int64(self.n), "count": self.count, "s1": self.s[0], "s2": self.s[1],
                "s3": self.s[2], "s4": self.s[3], "l0_sum": np.int64(self.l0_sum),
                "l0_sq": np.int64(self.l0_sq), "both": self.both[self.children],
                "orphan": self.orphan[self.children], "me_multi": self.multi[self.me_parents],
                "pair_both": self.pair_both}


def merge(a: dict, b: dict) -> dict:
    """The counts of two disjoint samples of the same sampler."""
    return {k: a[k] + b[k] for k in STAT_KEYS}


def _z(diff, se):
    diff, se = np.asarray(diff, np.float64), np.asarray(se, np.float64)
    # NaN (left out of the summaries) where there is no standard error: too few
    # activations, or none on either side
    return np.divide(diff, se, out=np.full_like(diff, np.nan), where=se > 0)


def _rate_z(ca, na, cb, nb):
    """z of the difference of two binomial proportions, pooled standard error."""
    ca, cb = np.asarray(ca, np.float64), np.asarray(cb, np.float64)
    pooled = (ca + cb) / (na + nb)
    se = np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    return _z(ca / na - cb / nb, se)


def _moments(st: dict, min_count: int):
    """Per feature: mean and variance of the active magnitudes and their standard errors
    (from the sample's own 2nd-4th central moments); NaN where fewer than min_count."""
    c = st["count"].astype(np.float64)
    ok = c >= min_count
    c = np.where(ok, c, np.nan)
    m1, m2, m3, m4 = (st[k] / c for k in ("s1", "s2", "s3", "s4"))
    var = m2 - m1**2
    mu4 = m4 - 4 * m3 * m1 + 6 * m2 * m1**2 - 3 * m1**4  # 4th central moment
    var_u = var * c / (c - 1)
    se_mean = np.sqrt(np.maximum(var_u, 0) / c)
    se_var = np.sqrt(np.maximum(mu4 - var**2, 0) / c)
    return m1, var_u, se_mean, se_var


def summarise_z(z, name: str, note: str = "") -> dict:
    """max |z|, shares beyond 3 and 4, mean z^2, against what N(0, 1) gives for this many
    tests; `pass`: max |z| below the Bonferroni bound for a family-wise 1% level."""
    z = np.asarray(z, np.float64)
    z = z[np.isfinite(z)]
    m = len(z)
    if m == 0:
        return {"statistic": name, "tests": 0, "note": note, "pass": True}
    bound = _bonferroni(m, 0.01)
    az = np.abs(z)
    return {"statistic": name, "tests": m, "max_abs_z": float(az.max()),
            "share_beyond_3": float((az > 3).mean()), "expected_share_beyond_3": 2.6998e-3,
            "share_beyond_4": float((az > 4).mean()), "expected_share_beyond_4": 6.334e-5,
            "mean_z2": float((z**2).mean()), "mean_z2_se": math.sqrt(2 / m),
            "mean_z": float(z.mean()), "mean_z_se": math.sqrt(1 / m),
            "bonferroni_1pct": bound, "pass": bool(az.max() < bound), "note": note}


def _bonferroni(m: int, alpha: float) -> float:
    """|z| bound that m independent N(0, 1) draws all stay below with probability 1 - alpha."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / (2 * m))


def compare(a: dict, b: dict, parent, min_count: int = 30) -> dict:
    """The statistics of sampler a (ours) against sampler b (the reference).

    Returns {"summaries": [one summarise_z row per statistic], "means": {side-by-side
    pooled figures}, "per_feature": {arrays for plotting / the JSON}}."""
    na, nb = float(a["n"]), float(b["n"])
    out, means = [], {}
    z_rate = _rate_z(a["count"], na, b["count"], nb)
    # (the z of a pooled-SE binomial difference is exact enough for counts >= ~10;
    # rarer features are few and are counted in `low_count_features`)
    means["low_count_features"] = int(((a["count"] + b["count"]) < 20).sum())
    out.append(summarise_z(z_rate, "firing rate per feature",
                           "pooled binomial SE; every feature"))
    # L0: mean of a per-example count; SE from its sample variance
    l0 = {}
    for side, st, n in (("ours", a, na), ("saelens", b, nb)):
        mean = st["l0_sum"] / n
        var = st["l0_sq"] / n - mean**2
        l0[side] = (mean, math.sqrt(var / n), math.sqrt(var))
    z_l0 = (l0["ours"][0] - l0["saelens"][0]) / math.hypot(l0["ours"][1], l0["saelens"][1])
    out.append(summarise_z([z_l0], "mean L0"))
    means["mean_l0"] = {"ours": l0["ours"][0], "saelens": l0["saelens"][0],
                        "se_ours": l0["ours"][1], "se_saelens": l0["saelens"][1],
                        "sd_ours": l0["ours"][2], "sd_saelens": l0["saelens"][2], "z": z_l0}
    # P(child | parent): conditional proportions, parent counts as trials
    # (the parent counts per child come from the per-feature counts)
    means["child_active_without_parent"] = {"ours": int(a["orphan"].sum()),
                                            "saelens": int(b["orphan"].sum())}
    means["exclusive_groups_with_two_active"] = {"ours": int(a["me_multi"].sum()),
                                                 "saelens": int(b["me_multi"].sum())}
    parent = np.asarray(parent, np.int64)
    parents_of = parent[parent >= 0]
    pa, pb = a["count"][parents_of], b["count"][parents_of]
    ok = (pa > 0) & (pb > 0)
    z_cond = _rate_z(a["both"][ok], pa[ok].astype(np.float64), b["both"][ok],
                     pb[ok].astype(np.float64)) if ok.any() else []
    out.append(summarise_z(z_cond, "P(child | parent) per child",
                           "pooled binomial SE, the parent's activations as trials"))
    ca_, cb_ = child_conditionals(a, parents_of), child_conditionals(b, parents_of)
    means["mean_P_child_given_parent"] = {"ours": float(np.nanmean(ca_)),
                                          "saelens": float(np.nanmean(cb_))}
    means["firing_rate_total"] = {"ours": float(a["count"].sum() / na),
                                  "saelens": float(b["count"].sum() / nb)}
    # magnitudes
    ma, va, sma, sva = _moments(a, min_count)
    mb, vb, smb, svb = _moments(b, min_count)
    out.append(summarise_z(_z(ma - mb, np.hypot(sma, smb)), "mean active magnitude per feature",
                           f"features with >= {min_count} activations on both sides"))
    out.append(summarise_z(_z(va - vb, np.hypot(sva, svb)),
                           "variance of active magnitudes per feature",
                           f"features with >= {min_count} activations on both sides; SE "
                           "from the 4th central moment"))
    ca, cb = a["count"].astype(np.float64), b["count"].astype(np.float64)
    for side, st, c in (("ours", a, ca), ("saelens", b, cb)):
        means.setdefault("pooled_active_magnitude_mean", {})[side] = float(st["s1"].sum() / c.sum())
        pm = st["s1"].sum() / c.sum()
        means.setdefault("pooled_active_magnitude_var", {})[side] = float(st["s2"].sum() / c.sum() - pm**2)
    if len(a["pair_both"]):
        out.append(summarise_z(_rate_z(a["pair_both"], na, b["pair_both"], nb),
                               "P(both active), correlated pairs", "pooled binomial SE"))
    return {"summaries": out, "means": means,
            "per_feature": {"z_rate": z_rate, "rate_ours": a["count"] / na,
                            "rate_saelens": b["count"] / nb}}


def child_conditionals(st: dict, parents_of) -> np.ndarray:
    """P(child | parent) per child, from one sample's counts."""
    pc = st["count"][parents_of].astype(np.float64)
    return np.divide(st["both"], pc, out=np.full(len(pc), np.nan), where=pc > 0)


def indicator_correlation(st: dict, pairs) -> np.ndarray:
    """Pearson correlation of the activity indicators of each pair."""
    n = float(st["n"])
    pairs = np.asarray(pairs, np.int64)
    pi, pj = st["count"][pairs[:, 0]] / n, st["count"][pairs[:, 1]] / n
    pij = st["pair_both"] / n
    return (pij - pi * pj) / np.sqrt(pi * (1 - pi) * pj * (1 - pj))


def save(path, st: dict) -> None:
    np.savez(path, **{k: np.asarray(st[k]) for k in STAT_KEYS})


def load(path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in STAT_KEYS}
