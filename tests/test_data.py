"""Finite datasets, the input laws and unit-norm inputs: sampling, training, the population
and training losses, the geometry of the data points, and the config keys."""

import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from toymodels import data, evaluation, train
from toymodels.analysis import analyze, data_points, hidden_points, training_set_of
from toymodels.analysis.data_points import data_dimensionality
from toymodels.config import to_toml
from toymodels.models import get_model
from toymodels.spec import DataSpec, ModelSpec, Spec, TrainSpec
from toymodels.sweep import default_chunk_size
from toymodels.trainers.toy import TRAINER as TOY

from helpers import (f32, fails_one_line, numpy_loss, random_params, same_arrays, toml_of,
                     write_file)


def _noise(F, B, spec=DataSpec(), seed=0):
    s = Spec(ModelSpec("relu_output", F, 1), TrainSpec(batch_size=B), spec)
    return data.sample_noise(jax.random.key(seed), s)


# ---- sampling


def test_exactly_one_draws_one_uniformly_chosen_feature_with_its_magnitude():
    F, B = 4, 200_000
    spec = DataSpec(inputs="exactly_one")
    x = np.asarray(data.sample_inputs(_noise(F, B, spec), jnp.full(F, 0.5), spec))
    assert ((x != 0).sum(axis=0) == 1).all()
    counts = (x != 0).sum(axis=1)
    assert np.abs(counts - B / F).max() < 5 * np.sqrt(B / F)  # uniform choice, 5 sigma
    values = x[x != 0]
    assert abs(values.mean() - 0.5) < 0.003 and abs(values.var() - 1 / 12) < 0.002
    assert np.corrcoef(np.argmax(x != 0, axis=0), x.sum(axis=0))[0, 1] ** 2 < 1e-4


def test_one_hot_batch_is_the_identity():
    spec = DataSpec(inputs="one_hot")
    x = data.sample_inputs(_noise(5, 5, spec), jnp.full(5, 0.2), spec, signed=True)
    np.testing.assert_array_equal(np.asarray(x), np.eye(5))


def test_unit_norm_rescales_every_example_and_keeps_zero():
    spec = DataSpec(unit_norm=True)
    x = np.asarray(data.sample_inputs(_noise(6, 4096, spec), jnp.full(6, 0.2), spec))
    norms = np.linalg.norm(x, axis=0)
    assert (norms == 0).any() and (norms > 0).any()
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-6)
    raw = np.asarray(data.sample_inputs(_noise(6, 4096, spec), jnp.full(6, 0.2), DataSpec()))
    same_direction = raw[:, norms > 0] / np.linalg.norm(raw[:, norms > 0], axis=0)
    np.testing.assert_allclose(x[:, norms > 0], same_direction, rtol=1e-6)


def test_dropout_draws_alone_are_those_of_the_whole_noise():
    spec = Spec(ModelSpec("relu_output", 5, 3), TrainSpec(batch_size=16))
    key = jax.random.key(4)
    np.testing.assert_array_equal(data.sample_dropout(key, spec),
                                  data.sample_noise(key, spec).dropout)


def test_minibatch_stream_visits_every_example_once_per_epoch():
    """T = 10, B = 4: 15 batches are 6 epochs, batches spanning two epochs included; each
    epoch is a permutation, the epochs are not all in one order, and B = T is 0..T-1."""
    T, B, key = 10, 4, jax.random.key(3)
    index = jax.jit(data.batch_indices, static_argnums=(2, 3))
    stream = np.concatenate([np.asarray(index(key, jnp.int32(k), T, B)) for k in range(15)])
    epochs = stream.reshape(6, T)
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(T))
    assert len({tuple(e) for e in epochs}) > 1
    np.testing.assert_array_equal(index(key, jnp.int32(7), T, B), stream[28:32])  # a pure function
    np.testing.assert_array_equal(index(key, jnp.int32(5), T, T), np.arange(T))


def test_the_trainers_kept_orders_give_the_stream_of_the_definition():
    """The trainer keeps the two current epochs' orders from step to step (`next_orders`,
    a new permutation only when an epoch begins): the same batches as `batch_indices`."""
    T, B, key = 10, 4, jax.random.key(5)
    advance = jax.jit(data.next_orders, static_argnums=(3, 4))
    orders = data.orders_at(key, jnp.int32(0), T, B)[None]
    for k in range(16):
        np.testing.assert_array_equal(data.indices_from(orders[0], jnp.int32(k), B),
                                      data.batch_indices(key, jnp.int32(k), T, B), err_msg=k)
        orders = advance(key[None], orders, jnp.int32(k), T, B)


# ---- common random numbers of datasets


def test_a_dataset_depends_on_data_seed_and_density_only():
    """Same data_seed: the same uniforms for every run, so a sparser run's active entries
    are a subset of a denser one's; another data_seed: other examples."""
    spec = Spec(ModelSpec("relu_output", 8, 2), data=DataSpec(dataset_size=64))
    make = lambda seed, p: np.asarray(data.training_set(
        data.dataset_key(0, seed), tm.make_hyper(8, feature_probability=p), spec, "relu_output"))
    dense, sparse = make(3, 0.5), make(3, 0.1)
    assert ((sparse != 0) <= (dense != 0)).all() and (sparse != 0).sum() < (dense != 0).sum()
    np.testing.assert_array_equal(make(3, 0.5), dense)
    assert not np.array_equal(make(4, 0.5) != 0, dense != 0)
    for seed in (0, 1):  # the dataset stream is none of the run or evaluation keys
        assert not np.array_equal(jax.random.key_data(data.dataset_key(0, seed)),
                                  jax.random.key_data(jax.random.fold_in(jax.random.key(0), seed)))


FINITE = {
    "name": "finite", "seed": 5,
    "model": {"kind": "relu_output", "n_features": 20, "n_hidden": 5},
    "data": {"importance_decay": 0.9, "dataset_size": 2048},
    "train": {"steps": 20, "batch_size": 1024, "log_every": 10, "eval_samples": 8192},
    "sweep": {"sparsity": [0.5, 0.9], "seed": [0, 1, 2, 3, 4], "data_seed": [0, 7]},
}


@pytest.fixture(scope="module")
def finite_sweep(tmp_path_factory):
    cfg = tm.parse_config(FINITE)
    return cfg, tm.load(tm.run_sweep(cfg, tmp_path_factory.mktemp("finite") / "run", quiet=True))


def test_train_loss_is_the_loss_on_the_regenerated_training_set(finite_sweep):
    """For runs that differ in init seed and in data_seed, the stored train_loss is a
    numpy recomputation on `training_set_of(run)`: every run trained on the examples
    of its data_seed, whatever its seed; runs sharing a data_seed share them."""
    cfg, ds = finite_sweep
    assert ds.train_loss.dims == ("sparsity", "seed", "data_seed") and "long_name" in ds.train_loss.attrs
    for sel in ({"seed": 0, "data_seed": 0}, {"seed": 3, "data_seed": 0}, {"seed": 3, "data_seed": 7}):
        run = ds.sel(sparsity=0.9, **sel)
        x = training_set_of(run).values.astype(np.float64).T  # [T, F]
        params = {"W": run.W.values.astype(np.float64), "b": run.b.values.astype(np.float64)}
        expected = numpy_loss("relu_output", params, x, run.importance.values).mean()
        np.testing.assert_allclose(float(run.train_loss), expected, rtol=2e-5)
    same = [training_set_of(ds.sel(sparsity=0.9, seed=s, data_seed=0)).values for s in (0, 3)]
    np.testing.assert_array_equal(*same)
    other = training_set_of(ds.sel(sparsity=0.9, seed=0, data_seed=7)).values
    assert not np.array_equal(same[0], other)
    assert (ds.train_loss < ds.final_loss * 2).all()  # 20 steps: no overfitting yet, same scale


@pytest.mark.parametrize("batch", [1024, pytest.param("full", marks=pytest.mark.slow)])  # full: 8 s
def test_chunk_size_changes_nothing_with_a_finite_dataset(tmp_path, finite_sweep, batch):
    """20 runs in two groups of V = 16, minibatches (10 epochs over 20 steps) or the full
    batch: chunks of 1 (rounded to one group) and of all runs give the same bits."""
    cfg = tm.parse_config({**FINITE, "train": {**FINITE["train"], "batch_size": batch},
                           "data": {**FINITE["data"], "dataset_size": 1024 if batch == "full" else 2048}})
    assert cfg.spec.train.batch_size == 1024 and train.block_size(cfg.spec) == 16
    names = ("W", "b", "loss", "final_loss", "final_loss_se", "train_loss")
    one = tm.load(tm.run_sweep(cfg, tmp_path / "one", chunk_size=1, quiet=True))
    if batch == "full":
        whole = tm.load(tm.run_sweep(cfg, tmp_path / "all", chunk_size=cfg.n_runs, quiet=True))
    else:
        whole = finite_sweep[1]  # made with the default chunk (all 20 runs, one chunk)
    same_arrays(one, whole, names)


@pytest.mark.parametrize("law", [pytest.param("one_hot", marks=pytest.mark.slow), "exactly_one"])  # 5-8 s each
def test_a_second_group_changes_nothing_for_the_other_laws(law):
    """One group of V runs alone or with a second group (as two chunk sizes would
    train them): the same bits, including the exact-only final_loss. one_hot: B = F =
    16; exactly_one: unit norm, 64 examples in minibatches of 32. (Batch sizes that are
    not a multiple of 16 change the logged `loss` by an ulp here, as for Bernoulli
    inputs on main: not this change's.)"""
    F = 16
    finite = law == "exactly_one"
    spec = Spec(ModelSpec("relu_output", F, 4),
                TrainSpec(steps=20, batch_size=32 if finite else F, log_every=10,
                          eval_samples=8192),
                DataSpec(inputs=law, unit_norm=finite, dataset_size=64 if finite else 0))
    V, fn = train.block_size(spec), jax.jit(train.make_train(spec))

    def run(R):
        hyper = jax.tree.map(lambda a: np.stack([a] * R), tm.make_hyper(
            F, feature_probability=1 / F, importance=0.9 ** np.arange(F), dropout=0.1))
        keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(0), jnp.arange(R) % 5)
        dataset_keys = jax.vmap(data.dataset_key, (None, 0))(0, jnp.arange(R) % 3)
        return fn(keys, jnp.arange(R, dtype=jnp.int32) % 5, hyper, evaluation.eval_key(0),
                  dataset_keys)

    one, two = run(V), run(2 * V)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two)):
        np.testing.assert_array_equal(a, b[:V])
    assert (np.asarray(one.final_loss_se) == 0).all() and np.isfinite(one.final_loss).all()


def test_full_batch_training_twice_gives_the_same_bits():
    spec = Spec(ModelSpec("relu_output", 6, 2), TrainSpec(steps=50, batch_size=32, log_every=10,
                                                          eval_samples=8192),
                DataSpec(dataset_size=32, unit_norm=True))
    fn = jax.jit(tm.make_train_one(spec))
    hyper = tm.make_hyper(6, feature_probability=0.3, dropout=0.1)
    a, b = fn(jax.random.key(1), hyper), fn(jax.random.key(1), hyper)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert np.isfinite(a.train_loss) and a.train_loss < a.loss[0]


# ---- the population loss of the new laws, against plain numpy Monte Carlo


def _estimate(kind, params, hyper, data_spec, F, H):
    spec = Spec(ModelSpec(kind, F, H), TrainSpec(eval_samples=65_536), data_spec)
    fn = jax.jit(lambda p: evaluation.population_loss(p, hyper, spec, get_model(kind),
                                                      jax.random.key(2)))
    loss, se = fn(f32(params))
    return float(loss), float(se)


def _numpy_samples(rng, n, F, law, density, magnitude, signed, unit_norm):
    if law == "exactly_one":
        active = np.eye(F, dtype=bool)[rng.integers(0, F, n)]
    else:
        active = rng.random((n, F)) < density
    value = rng.exponential(0.5, (n, F)) if magnitude == "exponential" else rng.random((n, F))
    x = np.where(active, 2 * value - 1 if signed else value, 0.0)
    if unit_norm:
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.where(norm > 0, x / np.where(norm > 0, norm, 1), 0.0)
    return x


@pytest.mark.parametrize("kind, law, magnitude, unit_norm", [
    ("relu_output", "bernoulli", "uniform", True),
    ("relu_output", "bernoulli", "exponential", True),  # exact K = 1 once normalised
    ("abs_computation", "bernoulli", "uniform", True),  # K = 1 is ±e_i
    ("relu_output", "exactly_one", "uniform", False),
    ("relu_output", "exactly_one", "uniform", True),
    ("abs_computation", "exactly_one", "uniform", False),
    ("relu_output", "exactly_one", "exponential", False),  # not exact: plain Monte Carlo
])
def test_population_loss_agrees_with_numpy_monte_carlo(kind, law, magnitude, unit_norm):
    """Within 4 combined standard errors of 10^6 numpy samples with a numpy forward pass;
    where the law is the exact one-feature stratum alone, the stated error is 0."""
    F, H, density = 6, 3, 0.2
    params = random_params(kind, F, H, seed=12)
    importance = 0.8 ** np.arange(F)
    spec = DataSpec(magnitude=magnitude, inputs=law, unit_norm=unit_norm)
    signed = get_model(kind).signed_inputs
    x = _numpy_samples(np.random.default_rng(13), 1_000_000, F, law, density, magnitude,
                       signed, unit_norm)
    losses = numpy_loss(kind, params, x, importance)
    reference, reference_se = losses.mean(), losses.std() / np.sqrt(len(losses))
    hyper = tm.make_hyper(F, feature_probability=density, importance=importance)
    loss, se = _estimate(kind, params, hyper, spec, F, H)
    assert abs(loss - reference) < 4 * np.hypot(se, reference_se), (loss, reference, se)
    if law == "exactly_one" and magnitude == "uniform":
        assert se == 0.0
    else:
        assert se > 0


@pytest.mark.parametrize("kind", ["relu_output", "abs_computation"])
def test_one_hot_population_loss_is_the_mean_over_the_basis(kind):
    F, H = 6, 3
    params = random_params(kind, F, H, seed=14)
    importance = 0.8 ** np.arange(F)
    expected = numpy_loss(kind, params, np.eye(F), importance).mean()
    hyper = tm.make_hyper(F, feature_probability=1 / F, importance=importance)
    loss, se = _estimate(kind, params, hyper, DataSpec(inputs="one_hot"), F, H)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert se == 0.0


# ---- the geometry of data points


@pytest.mark.parametrize("T", range(3, 9))
def test_regular_polygon_of_points_has_dimensionality_two_over_T(T):
    angle = 2 * np.pi * np.arange(T) / T
    h = jnp.asarray(1.7 * np.stack([np.cos(angle), np.sin(angle)]), jnp.float32)
    np.testing.assert_allclose(np.asarray(data_dimensionality(h)), 2 / T, rtol=1e-5)


def test_hand_built_points():
    orthogonal = jnp.asarray(np.diag([1.0, 2.0, 0.5]), jnp.float32)
    np.testing.assert_allclose(np.asarray(data_dimensionality(orthogonal)), 1.0, rtol=1e-6)
    pair = jnp.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])  # antipodal pair and a zero point
    np.testing.assert_allclose(np.asarray(data_dimensionality(pair)), [0.5, 0.5, 0.0])


def _points_at(degrees, radii=None):
    angle = np.radians(np.asarray(degrees, np.float64))
    r = np.ones_like(angle) if radii is None else np.asarray(radii, np.float64)
    return jnp.asarray(r * np.stack([np.cos(angle), np.sin(angle)]), jnp.float32)


def test_a_regular_triangle_has_gaps_of_120_and_dimensionality_two_thirds():
    """Unit points at 0°, 120°, 240°: (ĥ_t·h_s)² = cos²(120°) = 1/4 for s ≠ t, so
    D_t = 1 / (1 + 2/4) = 2/3 for each point; the gaps are 120° each, whatever the radius
    and the order the points come in."""
    h = _points_at([240.0, 0.0, 120.0], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(np.asarray(data_points.angular_gaps(h)), [120.0] * 3, atol=1e-4)
    np.testing.assert_allclose(np.asarray(data_dimensionality(h)), [2 / 3] * 3, rtol=1e-5)


def test_an_irregular_triangle_point_by_point():
    """Unit points at 0°, 105°, 221° (the gaps 105°, 116°, 139° of issue 25): the gaps in
    order from the smallest atan2 angle (221° = −139°: 139°, then 105°, 116°), and D_t = 1 / (1 + cos² a + cos² b) with a, b the
    angles to the two other points (h lists them as 105°, 221°, 0°: 105° and 116° for the
    first; 116° and 139° for the second; 105° and 139° for the third), the mean near 2/3
    though no point is."""
    h = _points_at([105.0, 221.0, 0.0])
    np.testing.assert_allclose(np.asarray(data_points.angular_gaps(h)), [139.0, 105.0, 116.0],
                               atol=1e-4)
    c = lambda deg: np.cos(np.radians(deg)) ** 2
    expected = [1 / (1 + c(105) + c(116)), 1 / (1 + c(116) + c(139)), 1 / (1 + c(105) + c(139))]
    np.testing.assert_allclose(np.asarray(data_dimensionality(h)), expected, rtol=1e-5)
    assert abs(np.mean(expected) - 2 / 3) < 0.06 and min(abs(np.array(expected) - 2 / 3)) > 0.02


def test_angular_gaps_wrap_around_and_need_two_dimensions():
    """Points at 350°, 10° and 100°: gaps 20° (across 0°), 90° and 250°, listed from the
    smallest atan2 angle in (−180°, 180°] (350° = −10°)."""
    h = _points_at([350.0, 100.0, 10.0], [1.0, 3.0, 0.2])
    np.testing.assert_allclose(np.asarray(data_points.angular_gaps(h)), [20.0, 90.0, 250.0],
                               atol=1e-4)
    with pytest.raises(ValueError, match="2 dimensions"):
        data_points.angular_gaps(jnp.ones((3, 4)))


@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
def test_small_datasets_are_memorised_as_a_regular_polygon_of_points():
    """Henighan et al. 2023: T = 5 unit-norm examples of 300 sparse features (S = 0.99,
    about 3 active each) in 2 hidden dimensions, full batch, AdamW (lr 0.02, weight decay
    0.1, 1,000 steps). 64 runs, each with its own dataset and init. The examples are
    memorised (train_loss ~ 0), and the non-zero ones (a dataset may hold a zero
    example, whose hidden vector is 0) form a regular n-gon: D_t = 2/n, angles 360/n
    degrees apart. Where the non-zero examples are orthogonal (disjoint supports, 49
    runs) 45 are within 0.03 and 5 degrees (median 0.004 and 0.4 degrees); where
    examples share features the polygon deforms (50 of all 64 within the bounds)."""
    F, T = 300, 5
    spec = Spec(ModelSpec("relu_output", F, 2),
                TrainSpec(steps=1000, batch_size=T, log_every=500, eval_samples=8192),
                DataSpec(unit_norm=True, dataset_size=T))
    V = train.block_size(spec)
    hyper = jax.tree.map(lambda a: np.stack([a] * V), tm.make_hyper(
        F, feature_probability=0.01, learning_rate=0.02, weight_decay=0.1))
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(0), jnp.arange(V))
    dataset_keys = jax.vmap(data.dataset_key, (None, 0))(0, jnp.arange(V))
    out = jax.jit(train.make_train(spec))(keys, jnp.arange(V, dtype=jnp.int32), hyper,
                                          evaluation.eval_key(0), dataset_keys)
    xs = jax.vmap(lambda k, h: data.training_set(k, h, spec, "relu_output"))(dataset_keys, hyper)
    h = np.asarray(jnp.einsum("rhf,rft->rht", out.params["W"], xs))
    D = np.asarray(jax.vmap(data_dimensionality)(jnp.asarray(h)))
    regular, orthogonal = np.zeros(V, bool), np.zeros(V, bool)
    for r, (h_run, D_run, x_run) in enumerate(zip(h, D, np.asarray(xs))):
        on = (x_run != 0).any(axis=0)
        n = on.sum()
        support = (x_run != 0).astype(int)
        orthogonal[r] = (support.T @ support == np.diag(support.sum(axis=0))).all()
        angles = np.sort(np.degrees(np.arctan2(h_run[1, on], h_run[0, on])) % 360)
        gaps = np.diff(np.r_[angles, angles[0] + 360])
        regular[r] = (np.abs(D_run[on] - 2 / n).max() < 0.03) and (np.abs(gaps - 360 / n).max() < 5)
        np.testing.assert_array_equal(D_run[~on], 0.0)
    assert np.median(out.train_loss) < 1e-4
    assert orthogonal.sum() >= V / 2, orthogonal.sum()
    assert regular[orthogonal].mean() >= 0.85, (regular[orthogonal].sum(), orthogonal.sum())
    assert regular.mean() >= 0.7, regular.sum()


@pytest.fixture(scope="module")
def points_sweep(tmp_path_factory):
    cfg = tm.parse_config({
        "name": "points", "model": {"kind": "relu_output", "n_features": 6, "n_hidden": 2},
        "data": {"sparsity": 0.7, "dataset_size": 12, "unit_norm": True},
        "train": {"steps": 40, "batch_size": "full", "log_every": 20, "eval_samples": 8192},
        "sweep": {"seed": [0, 1], "data_seed": [2, 9]}})
    return tm.load(tm.run_sweep(cfg, tmp_path_factory.mktemp("points") / "run", quiet=True))


def test_analyze_adds_the_dimensionality_of_the_regenerated_points(points_sweep):
    ds = points_sweep
    out = analyze(ds)
    assert out.data_dimensionality.dims == ("seed", "data_seed", "example")
    assert out.data_dimensionality_mean.dims == ("seed", "data_seed")
    for name in ("data_dimensionality", "data_dimensionality_mean"):
        assert out[name].attrs["description"]
    for seed, data_seed in ((0, 2), (1, 9)):
        run = ds.sel(seed=seed, data_seed=data_seed)
        expected = np.asarray(data_dimensionality(jnp.asarray(hidden_points(run).values)))
        got = out.data_dimensionality.sel(seed=seed, data_seed=data_seed).values
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(float(out.data_dimensionality_mean.sel(
            seed=seed, data_seed=data_seed)), expected.mean(), rtol=1e-5)
    h = hidden_points(ds.sel(seed=1, data_seed=9))
    x = training_set_of(ds.sel(seed=1, data_seed=9))
    np.testing.assert_allclose(h.values, ds.W.sel(seed=1, data_seed=9).values @ x.values,
                               rtol=1e-5, atol=1e-7)


def test_analyze_keeps_only_the_mean_above_the_example_limit(points_sweep, monkeypatch):
    monkeypatch.setattr(data_points, "EXAMPLE_LIMIT", 12)
    at = analyze(points_sweep)
    monkeypatch.setattr(data_points, "EXAMPLE_LIMIT", 11)
    above = analyze(points_sweep)
    assert at.data_dimensionality.shape == (2, 2, 12) and "data_dimensionality" not in above
    np.testing.assert_allclose(above.data_dimensionality_mean, at.data_dimensionality_mean,
                               rtol=1e-6)


def test_online_results_get_no_data_point_variables():
    import xarray as xr

    from helpers import config

    W = xr.DataArray(np.eye(2, 5, dtype=np.float32), dims=("hidden", "feature"))
    density = xr.DataArray(np.full(5, 0.1, np.float32), dims=("feature",))
    ds = xr.Dataset({"W": W, "density": density}, attrs={"config": to_toml(config())})
    assert "data_dimensionality_mean" not in analyze(ds)
    with pytest.raises(ValueError, match="data.dataset_size"):
        training_set_of(ds)


def test_chunk_size_counts_the_training_set():
    online = Spec(ModelSpec("relu_output", 100, 10), TrainSpec(steps=10, batch_size=16))
    finite = Spec(online.model, online.train, DataSpec(dataset_size=100_000))
    assert default_chunk_size(TOY, finite, 4096) < default_chunk_size(TOY, online, 4096) / 10


# ---- config


BASE = {"name": "d", "model": {"n_features": 5, "n_hidden": 2},
        "train": {"steps": 20, "log_every": 10}, "sweep": {"seed": [0]}}


def _raw(data=None, train=None, sweep=None):
    return {**BASE, "data": data or {}, "train": {**BASE["train"], **(train or {})},
            "sweep": sweep or BASE["sweep"]}


def test_the_new_keys_round_trip_and_resolve():
    full = tm.parse_config(_raw({"dataset_size": 16, "unit_norm": True},
                                {"batch_size": "full"}, {"data_seed": [0, 3]}))
    assert full.spec.train.batch_size == 16 and full.train["batch_size"] == "full"
    assert 'batch_size = "full"' in to_toml(full)
    one_hot = tm.parse_config(_raw({"inputs": "one_hot"}))
    assert one_hot.spec.train.batch_size == 5
    for cfg in (full, one_hot, tm.parse_config(_raw({"inputs": "exactly_one"}))):
        assert tm.parse_config(tomllib.loads(to_toml(cfg))) == cfg
    grid = tm.expand(full)
    np.testing.assert_array_equal(grid.data_seed, [0, 3])
    np.testing.assert_allclose(tm.expand(one_hot).hyper.feature_probability, 0.2)


BAD = [
    ("bad batch word", {"dataset_size": 8}, {"batch_size": "fulll"}, None,
     'train.batch_size: must be an integer >= 1 or "full"'),
    ("full without dataset", {}, {"batch_size": "full"}, None,
     'train.batch_size: "full" needs data.dataset_size'),
    ("batch above dataset", {"dataset_size": 8}, {"batch_size": 9}, None,
     "train.batch_size: must be at most data.dataset_size = 8"),
    ("stream past uint32", {"dataset_size": 70_000}, {"batch_size": 65_536, "steps": 70_000,
                                                      "log_every": 10}, None,
     "train.steps x train.batch_size must be < 2**32"),
    ("data_seed without dataset", {"data_seed": 3}, {}, None,
     "data.data_seed: needs data.dataset_size"),
    ("data_seed axis without dataset", {}, {}, {"data_seed": [0, 1]},
     "sweep.data_seed: needs data.dataset_size"),
    ("data_seed out of range", {"dataset_size": 8, "data_seed": 2**31}, {}, None,
     "data.data_seed: must be an integer >= 0 and < 2147483648"),
    ("dataset with one_hot", {"inputs": "one_hot", "dataset_size": 8}, {}, None,
     "data.dataset_size: not with data.inputs = one_hot"),
    ("batch with one_hot", {"inputs": "one_hot"}, {"batch_size": 64}, None,
     "train.batch_size: data.inputs = one_hot trains on the model.n_features = 5 one-hot vectors"),
    ("full with one_hot", {"inputs": "one_hot"}, {"batch_size": "full"}, None,
     "train.batch_size: data.inputs = one_hot trains on the model.n_features = 5"),
    ("magnitude with one_hot", {"inputs": "one_hot", "magnitude": "constant"}, {}, None,
     "data.magnitude: not with data.inputs = one_hot"),
    ("sparsity with exactly_one", {"inputs": "exactly_one", "sparsity": 0.9}, {}, None,
     "data.sparsity: not with data.inputs = exactly_one"),
    ("swept density with one_hot", {"inputs": "one_hot"}, {}, {"feature_probability": [0.1]},
     "sweep.feature_probability: not with data.inputs = one_hot"),
    ("density ratio with exactly_one", {"inputs": "exactly_one", "density_ratio": 2.0}, {}, None,
     "data.density_ratio: not with data.inputs = exactly_one"),
    ("sets with exactly_one", {"inputs": "exactly_one", "correlation": "correlated",
                               "set_size": 5}, {}, None,
     "data.correlation: must be independent with data.inputs = exactly_one"),
    ("unknown law", {"inputs": "gaussian"}, {}, None,
     "data.inputs: must be one of bernoulli, exactly_one, one_hot"),
    ("unit_norm not a boolean", {"unit_norm": 1}, {}, None, "data.unit_norm: must be true or false"),
]


@pytest.mark.parametrize("what,data_table,train_table,sweep,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_data_config_is_one_line(tmp_path, capsys, what, data_table, train_table, sweep,
                                     fragment):
    path = write_file(tmp_path, toml_of(_raw(data_table, train_table, sweep)))
    err = fails_one_line(capsys, tmp_path, ["sweep", str(path)], fragment)
    assert str(path) in err
