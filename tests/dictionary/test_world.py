"""The synthetic feature world (toymodels.dictionary.world) and its [synthetic] table
(toymodels.synthetic_config): the laws against closed forms and large samples, the
hierarchy's and exclusion's rules on every example, the copula's correlations against
bivariate-normal orthant probabilities (scipy), the published preset, one-line errors,
and a tiny SAE sweep through the CLI.

Expected values come from closed forms written here, numpy or scipy, or the SynthSAEBench
publication (SAELens's docs/synth_sae_bench.md), never from the code under test. Worlds
are small and each is sampled once per module (a compile each).

Convention: `World.probability[i]` is the probability feature i is DRAWN; a child fires
only if its parent fires, so without exclusion or correlation P(child fires) =
P(parent fires) * probability[child] (the product down its line of ancestors).
"""

import dataclasses
import math
import tomllib

import jax
import numpy as np
import pytest
import xarray as xr
from scipy import stats

import toymodels as tm
from toymodels import groups
from toymodels.cli import main
from toymodels.dictionary import world as W
from toymodels.dictionary.train import sae_block_size, world_batch
from toymodels.errors import UserError
from toymodels.synthetic_config import parse_world
from toymodels.world_spec import WorldSpec

N = 40_000  # examples of a sampled world: 4 standard errors of a rate p are 4 sqrt(p / N)


def draw(world, spec, n=N, seed=0) -> np.ndarray:
    return np.asarray(jax.jit(W.sample_codes, static_argnums=(1, 3))(world, spec, jax.random.key(seed), n))


def within(observed, expected, se, what=""):
    assert np.all(np.abs(observed - expected) <= 4 * se + 1e-9), (what, observed, expected)


# ---- firing laws


def test_zipf_probabilities_follow_the_closed_form():
    """p_i = p_min + (p_max - p_min) (i^-a - F^-a) / (1 - F^-a), rank i = 1..F: p_1 =
    p_max, p_F = p_min (SAELens's zipfian), here at SynthSAEBench's a = 0.5."""
    F, a, hi, lo = 1000, 0.5, 0.4, 5e-4
    i = np.arange(1, F + 1)
    expected = lo + (hi - lo) * (1 / np.sqrt(i) - 1 / np.sqrt(F)) / (1 - 1 / np.sqrt(F))
    spec = WorldSpec(F, 8, zipf_exponent=a, zipf_max=hi, zipf_min=lo)
    np.testing.assert_allclose(W.firing_probabilities(spec), expected, rtol=1e-12)
    world = W.build_world(spec, 0)
    np.testing.assert_allclose(world.probability, expected, rtol=1e-6)
    assert world.probability[0] == np.float32(0.4) and world.probability[-1] == np.float32(5e-4)


# a forest: 2 roots, 3 children each, then 3 grandchildren each (2 + 6 + 18 = 26 of 30
# features; 4 free ones); Zipf p falls with the index, so every child's p is below its
# parent's and the compensation (p_child / p_parent) stays below 1
FOREST = WorldSpec(30, 16, zipf_exponent=0.5, zipf_max=0.6, zipf_min=0.05, roots=2,
                   branching=(3, 3), depth=2)


@pytest.fixture(scope="module")
def forest():
    world = W.build_world(FOREST, 1)
    return world, draw(world, FOREST)


def ancestors_product(p: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """P(fires) = the product of the draw probabilities up the line of ancestors."""
    out = np.empty(len(p))
    for i in range(len(p)):
        q, j = p[i], parent[i]
        while j >= 0:
            q, j = q * p[j], parent[j]
        out[i] = q
    return out


def test_the_forest_is_breadth_first_and_rates_are_products_down_the_line(forest):
    world, codes = forest
    parent = np.asarray(world.parent)
    expected_parent = np.array([-1, -1, 0, 0, 0, 1, 1, 1, *np.repeat(np.arange(2, 8), 3), -1, -1, -1, -1])
    np.testing.assert_array_equal(parent, expected_parent)
    p = np.asarray(world.probability, np.float64)
    rate = ancestors_product(p, parent)
    within((codes > 0).mean(0), rate, np.sqrt(rate * (1 - rate) / N), "rates")


def test_children_never_fire_without_their_parent(forest):
    world, codes = forest
    parent = np.asarray(world.parent)
    child = parent >= 0
    assert not np.any((codes[:, child] > 0) & (codes[:, parent[child]] == 0))


@pytest.mark.slow  # a compile of its own world's sampler (the default suite's time budget)
def test_compensated_children_fire_at_their_laws_rate():
    """With compensation (and no exclusion or correlation) a child is drawn with
    p_child / p_parent, so it fires at its law's p exactly (SAELens's intent)."""
    spec = dataclasses.replace(FOREST, compensate=True)
    world = W.build_world(spec, 1)
    law = W.zipf_probabilities(30, 0.5, 0.6, 0.05)  # the closed form is checked above
    rate = (draw(world, spec) > 0).mean(0)
    within(rate, law, np.sqrt(law * (1 - law) / N), "compensated rates")


def test_exclusive_children_never_cofire_and_keep_one_uniformly():
    """One root (p = 0.5) with 3 exclusive children, each drawn with q = 0.4: a child
    fires when the root does, it is drawn, and it wins the draw among the drawn siblings:
    P = 0.5 q sum_m C(2, m) q^m (1 - q)^(2 - m) / (m + 1)."""
    q = 0.4
    spec = WorldSpec(4, 8, firing="list", probabilities=(0.5, q, q, q), roots=1,
                     branching=(3, 3), depth=1, exclusive=1.0)
    world = W.build_world(spec, 3)
    np.testing.assert_array_equal(world.group, [-1, 0, 0, 0])
    on = draw(world, spec) > 0
    assert not np.any(on[:, 1:].sum(1) > 1)
    p = 0.5 * q * sum(math.comb(2, m) * q ** m * (1 - q) ** (2 - m) / (m + 1) for m in range(3))
    within(on[:, 1:].mean(0), p, math.sqrt(p * (1 - p) / N), "exclusive rates")


@pytest.mark.slow  # a compile of its own world's sampler (the default suite's time budget)
def test_a_scaled_child_is_its_value_times_its_parents_over_its_mean():
    """scale_children: child = max(0, m_c + s_c z_c) * parent / m_parent; with std 0
    that is m_c * parent / m_parent, the parent's own value m_parent: so m_c exactly."""
    spec = WorldSpec(3, 4, firing="constant", probability=0.7, roots=1, branching=(2, 2),
                     depth=1, mean_law="list", mean=(2.0, 3.0, 5.0), std_law="list",
                     std=(0.5, 0.0, 0.0), scale_children=True)
    codes = draw(W.build_world(spec, 0), spec, 2000)
    fired = codes[:, 1] > 0
    np.testing.assert_allclose(codes[fired, 1], 3.0 * codes[fired, 0] / 2.0, rtol=1e-6)
    assert np.std(codes[fired, 1]) > 0.1  # it varies with the parent's value


# ---- correlation


def orthant(t: float, rho: float) -> float:
    """P(z_i > t, z_j > t) of a standard bivariate normal with correlation rho."""
    return stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]]).cdf([-t, -t])


def indicator_correlation(p: float, rho: float) -> float:
    both = orthant(stats.norm.ppf(1 - p), rho)
    return (both - p * p) / (p * (1 - p))


@pytest.mark.slow  # a compile of its own world's sampler (the default suite's time budget)
def test_explicit_and_low_rank_correlations_have_the_implied_sign_and_size():
    """Firing indicators of a Gaussian copula: corr = (P11 - p^2) / (p (1 - p)), P11 the
    orthant probability of the latent correlation (rho for a pair; the factor rows' dot
    product for the low rank), within 4 standard errors (1 / sqrt N)."""
    p = 0.3
    spec = WorldSpec(8, 8, firing="constant", probability=p, rank=2, correlation_scale=0.5,
                     correlations=((0, 1, 0.6), (2, 3, -0.6)))
    world = W.build_world(spec, 5)
    on = (draw(world, spec) > 0).astype(np.float64)
    within(on.mean(0), p, math.sqrt(p * (1 - p) / N), "rates")
    corr = np.corrcoef(on.T)
    f = np.asarray(world.factor, np.float64)[:, :2]  # the low-rank part
    latent = f @ f.T
    latent[0, 1] += 0.6
    latent[2, 3] -= 0.6
    assert corr[0, 1] > 0.2 and corr[2, 3] < -0.2
    for i in range(8):
        for j in range(i + 1, 8):
            expected = indicator_correlation(p, latent[i, j] if i < j else latent[j, i])
            assert abs(corr[i, j] - expected) <= 4 / math.sqrt(N), (i, j, corr[i, j], expected)


# ---- exactly K, magnitudes


@pytest.mark.slow  # a compile of its own world's sampler (the default suite's time budget)
def test_exactly_k_gives_exactly_k_features_uniformly():
    spec = WorldSpec(12, 8, firing="exactly_k", active=3)
    on = draw(W.build_world(spec, 0), spec, 20_000) > 0
    assert np.all(on.sum(1) == 3)
    within(on.mean(0), 0.25, math.sqrt(0.25 * 0.75 / 20_000), "uniform choice")


@pytest.mark.slow  # a compile of its own world's sampler each (the default suite's time budget)
@pytest.mark.parametrize("law, m, s, mean, second", [
    ("half_normal", 9.0, 2.0, 2.0 * math.sqrt(2 / math.pi), 4.0),  # |N(0, s^2)|: m unused
    ("folded_normal", 1.0, 2.0, 2.0 * math.sqrt(2 / math.pi) * math.exp(-1 / 8)
     + 1.0 * (1 - 2 * stats.norm.cdf(-0.5)), 1.0 + 4.0),  # |N(m, s^2)|
    ("rectified_normal", 1.0, 2.0, 1.0 * stats.norm.cdf(0.5) + 2.0 * stats.norm.pdf(0.5),
     (1.0 + 4.0) * stats.norm.cdf(0.5) + 1.0 * 2.0 * stats.norm.pdf(0.5)),  # max(0, N)
    ("uniform", 3.0, 1.0, 3.0, 9.0 + 1.0),
])
def test_magnitude_moments_match_their_closed_forms(law, m, s, mean, second):
    spec = WorldSpec(4, 4, firing="constant", probability=1.0, mean=(m,), std=(s,), magnitude=law)
    x = draw(W.build_world(spec, 0), spec, 20_000).reshape(-1)
    n = len(x)
    within(x.mean(), mean, math.sqrt((second - mean ** 2) / n), "mean")
    within((x ** 2).mean(), second, np.std(x ** 2) / math.sqrt(n), "second moment")


def test_per_feature_values_are_linear_listed_or_folded_normal():
    spec = WorldSpec(2000, 4, mean_law="linear", mean=(5.0, 4.0), std_law="folded_normal", std=(0.5, 0.5))
    world = W.build_world(spec, 0)
    np.testing.assert_allclose(world.mean, np.linspace(5, 4, 2000), rtol=1e-6)
    std = np.asarray(world.std, np.float64)  # |N(0.5, 0.25)|: mean 0.5 (1 - 2 Phi(-1)) + 0.5 sqrt(2/pi) e^-1/2
    expected = 0.5 * (1 - 2 * stats.norm.cdf(-1)) + 0.5 * math.sqrt(2 / math.pi) * math.exp(-0.5)
    within(std.mean(), expected, std.std() / math.sqrt(2000), "folded normal stds")
    assert std.min() >= 0


# ---- the dictionary and the bias


def test_directions_are_orthonormal_when_they_fit_and_the_bias_has_its_norm():
    spec = WorldSpec(6, 10, orthogonal=True, bias=0.7)
    world = W.build_world(spec, 2)
    t = np.asarray(world.truth, np.float64)
    np.testing.assert_allclose(t @ t.T, np.eye(6), atol=1e-5)
    assert abs(np.linalg.norm(world.bias) - 0.7) < 1e-6
    codes = np.eye(6, dtype=np.float32) * 2.0
    np.testing.assert_allclose(W.hidden(world, codes), 2.0 * t + np.asarray(world.bias), atol=1e-5)


@pytest.mark.slow  # a compile of its own world's sampler (the default suite's time budget)
def test_orthogonalisation_lowers_the_overlaps_and_keeps_unit_rows():
    base = WorldSpec(64, 16)
    before = np.asarray(W.build_world(base, 0).truth, np.float64)
    after = np.asarray(W.build_world(dataclasses.replace(base, ortho_steps=50, ortho_lr=0.01), 0).truth, np.float64)
    off = lambda t: np.sum((t @ t.T) ** 2) - np.sum(np.diag(t @ t.T) ** 2)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    # the Welch bound: sum_{i != j} (t_i . t_j)^2 >= F^2 / d - F for F unit vectors in d dims
    assert 64 ** 2 / 16 - 64 <= off(after) < 0.8 * off(before)


def test_a_world_is_its_seed_and_reads_back_from_its_variables():
    world = W.build_world(FOREST, 4)
    again = W.build_world(FOREST, 4)
    other = W.build_world(FOREST, 5)
    for a, b in zip(jax.tree.leaves(world), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(world.truth, other.truth)
    variables = W.world_variables(world)
    back = W.world_from_variables(lambda name: variables[name][1])
    for a, b in zip(jax.tree.leaves(world), jax.tree.leaves(back)):
        np.testing.assert_array_equal(a, b)


# ---- the [synthetic] table


def test_the_16k_preset_is_synthsaebench_16k_as_published():
    """SAELens docs/synth_sae_bench.md, "Creating Custom Benchmark Models" (the config
    that builds SynthSAEBench-16k): written here by hand."""
    spec, seed, _ = parse_world({"preset": "synthsaebench-16k"}, "x.toml")
    assert seed == 42
    expected = dict(n_features=16_384, n_hidden=768, firing="zipf", zipf_exponent=0.5,
                    zipf_max=0.4, zipf_min=5e-4, roots=128, branching=(4, 4), depth=3,
                    exclusive=1.0, exclusive_min_depth=0, compensate=True, scale_children=True,
                    rank=25, correlation_scale=0.1, ortho_steps=100, ortho_lr=3e-4,
                    mean_law="linear", mean=(5.0, 4.0), std_law="folded_normal", std=(0.5, 0.5),
                    magnitude="rectified_normal", bias=0.5)
    assert {k: getattr(spec, k) for k in expected} == expected
    parent, level = W.forest(spec, np.random.default_rng(0))
    assert (parent >= 0).sum() + 128 == 128 * (1 + 4 + 16 + 64)  # 10,880 features in trees
    assert level.max() == 3
    small, _, _ = parse_world({"preset": "synthsaebench-1k", "rank": 0}, "x.toml")
    assert (small.n_features, small.n_hidden, small.roots, small.rank) == (1024, 128, 8, 0)


SAE = {"name": "w", "sae": {"source": "synthetic", "kind": "topk", "k": 2, "width": 8},
       "synthetic": {"n_features": 12, "n_hidden": 6}, "train": {"steps": 20, "log_every": 10}}


@pytest.mark.parametrize("change, line", [
    ({"synthetic": {"n_features": 12, "n_hidden": 6, "rnak": 2}},
     "x.toml: synthetic.rnak: unknown key; did you mean rank?"),
    ({"synthetic": {"preset": "synthsaebench-16"}},
     "x.toml: synthetic.preset: must be one of synthsaebench-16k"),
    ({"synthetic": {"n_features": 12}}, "x.toml: synthetic.n_hidden: needed"),
    ({"synthetic": {"n_features": 12, "n_hidden": 6, "mean_law": "linear", "mean": 2.0}},
     'x.toml: synthetic.mean: mean_law = "linear" takes [a, b], got 1 number(s)'),
    ({"synthetic": {"n_features": 12, "n_hidden": 6, "orthogonal": True}},
     "x.toml: synthetic.orthogonal: needs n_features <= n_hidden"),
    ({"synthetic": {"n_features": 12, "n_hidden": 6, "firing": "exactly_k", "active": 2, "roots": 2}},
     'x.toml: synthetic.roots: firing = "exactly_k" draws exactly K features'),
    ({"synthetic": {"n_features": 12, "n_hidden": 6, "correlations": [[0, 1, 0.7], [1, 2, 0.7]]}},
     "x.toml: synthetic.correlations: feature 1's sum of |rho| is 1.4"),
    ({"sae": {**SAE["sae"], "n_features": 12}}, "x.toml: sae.n_features: with a [synthetic] world, set synthetic.n_features"),
    ({"data": {"sparsity": 0.9}}, "x.toml: data.sparsity: not used with a [synthetic] world"),
    ({"sweep": {"n_hidden": [4, 8]}}, "x.toml: sweep.n_hidden: one per sweep, not a sweep axis (a shape: write a sweep file per world)"),
    ({"sweep": {"feature_probability": [0.1]}}, "x.toml: sweep.feature_probability: not used with a [synthetic] world"),
    ({"sae": {**SAE["sae"], "source": "zoo:basic_p0.1"}}, 'x.toml: synthetic: a synthetic world is a source: only with sae.source = "synthetic"'),
])
def test_bad_synthetic_input_is_one_line_naming_the_key(change, line):
    with pytest.raises(UserError) as e:
        tm.parse_config({**SAE, **change}, "x.toml")
    assert str(e.value).startswith(line) and "\n" not in str(e.value), str(e.value)


@pytest.mark.slow  # a compile of its own world's sampler (the default suite's time budget)
def test_a_world_config_reads_back_from_its_toml_and_batches_ignore_the_kind():
    """The manifest's TOML parses to the same config; a seed's batch is the same for
    every kind (common random numbers), compiled apart."""
    config = tm.parse_config({**SAE, "synthetic": {"preset": "synthsaebench-1k", "n_features": 12,
                                                   "n_hidden": 6, "roots": 1, "rank": 2,
                                                   "ortho_steps": 0}}, "x.toml")
    assert tm.parse_config(tomllib.loads(repr(config)), "y.toml") == config
    other = dataclasses.replace(config.spec, sae=dataclasses.replace(config.spec.sae, kind="relu", width=5))
    key = jax.random.key(3)
    a = jax.jit(world_batch, static_argnums=0)(config.spec, key)
    b = jax.jit(world_batch, static_argnums=0)(other, key)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, config.spec.train.batch_size)


@pytest.mark.slow  # two compiles of a sweep and one of analyze
def test_a_tiny_world_sweep_trains_and_analyzes_through_the_cli(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text('name = "w"\n[sae]\nsource = "synthetic"\nkind = "topk"\nk = 2\nwidth = 8\n'
                    '[synthetic]\nn_features = 8\nn_hidden = 6\nroots = 2\nbranching = 2\n'
                    'exclusive = 1.0\nrank = 1\ncorrelation_scale = 0.3\nbias = 0.2\n'
                    '[train]\nsteps = 10\nlog_every = 5\nbatch_size = 32\n')
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    assert main(["analyze", str(out)]) == 0
    ds = tm.load(out)
    assert ds.truth.dims == ("hidden", "feature") and ds.parent.dims == ("feature",)
    np.testing.assert_array_equal(ds.parent.values, [-1, -1, 0, 0, 1, 1, -1, -1])
    assert ds.mmcs.dims == () and np.isfinite(float(ds.mmcs))
    assert float(ds.world_energy) > 0


def test_a_shared_variable_is_stored_once_across_static_groups():
    """groups.combine keeps a variable marked shared (the world's truth) without the
    static axes, and stacks the others along them."""
    config = tm.parse_config({**SAE, "sweep": {"kind": ["topk", "relu"], "seed": [0]}}, "x.toml")
    truth = np.arange(6.0).reshape(2, 3)
    parts = [xr.Dataset({"loss": (("seed", "step"), [[i, i + 1.0]]),
                         "truth": (("hidden", "feature"), truth, {groups.SHARED: "one world"})},
                        coords={"seed": [0], "step": [1, 2]}) for i in range(2)]
    ds = groups.combine(parts, config)
    assert ds.truth.dims == ("hidden", "feature") and ds.loss.dims == ("kind", "seed", "step")
    np.testing.assert_array_equal(ds.truth, truth)
    np.testing.assert_array_equal(ds.loss.sel(kind="relu", seed=0), [1.0, 2.0])


@pytest.mark.slow  # two sweeps of 8 SAEs
def test_a_world_sweep_has_the_same_bits_in_any_chunk_size(tmp_path):
    """The world's batches depend only on a seed's DATA key and the step: chunks of one
    block (V = 4 SAEs: 2^19 values / (8192 x (4 + 4 + 8))) give the bits of one chunk."""
    raw = {"name": "w", "sae": {"source": "synthetic", "kind": "relu", "width": 4},
           "synthetic": {"n_features": 8, "n_hidden": 4, "roots": 2, "exclusive": 1.0, "rank": 1,
                         "correlation_scale": 0.3, "bias": 0.2},
           "train": {"steps": 20, "batch_size": 8192, "log_every": 10},
           "sweep": {"seed": [0, 1, 2, 3], "l1_coefficient": [0.001, 0.01]}}
    config = tm.parse_config(raw, "w.toml")
    assert sae_block_size(config.spec) == 4 and config.n_runs == 8
    one = tm.load(tm.run_sweep(config, tmp_path / "one", quiet=True))
    two = tm.load(tm.run_sweep(config, tmp_path / "two", chunk_size=2, quiet=True))
    for name in ("encoder", "decoder", "b_enc", "b_dec", "loss"):
        np.testing.assert_array_equal(one[name].values, two[name].values, err_msg=name)
