"""The model zoo (issue 5): every shipped model loads and runs, and each shows the property
its description documents, checked on the SHIPPED weights (toymodels/zoo_data/*.npz)."""

import tomllib

import numpy as np
import pytest

import toymodels as tm
from toymodels import analysis, zoo, zoo_build
from helpers import run_cli
from portable import TOLERANCE, assert_close_elsewhere

NAMES = zoo.names()


@pytest.fixture(scope="module")
def models():
    return {name: zoo.load(name) for name in NAMES}


def _cos(W: np.ndarray) -> np.ndarray:
    """[F, F] cosines between the columns of W: [H, F]."""
    unit = W / np.maximum(np.linalg.norm(W, axis=0), 1e-12)
    return unit.T @ unit


# ---- every entry


def test_at_least_a_dozen_entries_with_one_line_descriptions():
    assert len(NAMES) >= 12
    for name in NAMES:
        text = zoo.describe(name)
        assert text and "\n" not in text


@pytest.mark.parametrize("name", NAMES)
def test_loads_with_documented_shapes_and_runs_on_one_input_or_a_batch(name, models):
    model = models[name]
    F, H = model.n_features, model.n_hidden
    assert model.name == name and model.kind == model.config.spec.model.kind
    assert model.W.shape == (H, F) and model.b.shape == (F,)
    assert all(v.dtype == np.float32 for v in model.params.values())
    x = np.random.default_rng(0).uniform(size=(7, F)).astype(np.float32)
    y, h = model(x), model.hidden(x)
    assert y.shape == (7, F) and h.shape == (7, H)
    assert model(x[0]).shape == (F,) and model.hidden(x[0]).shape == (H,)
    np.testing.assert_allclose(model.forward(x[3]), y[3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.hidden(x[3]), h[3], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="must be \\[F\\] or \\[B, F\\]"):
        model(np.ones(F + 1))


def test_call_is_the_paper_formula(models):
    model = models["intro_pentagon"]
    x = np.random.default_rng(1).uniform(size=(4, 5))
    expected = np.maximum(x @ model.W.T @ model.W + model.b, 0.0)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.hidden(x), x @ model.W.T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trips_and_metrics_match_the_weights(name, models):
    model = models[name]
    assert model.config == zoo.config(name)
    stored = tm.parse_config(tomllib.loads(tm.to_toml(model.config)))
    assert stored == zoo.config(name)
    assert set(model.at) == {axis for axis, _ in model.config.axes}
    # the shipped metrics were computed on the build machine: floats within the measured
    # cross-machine tolerance (tests/portable.py), labels exactly
    fresh = zoo_build.model_metrics(model.params)
    assert_close_elsewhere(fresh, {key: model.metrics[key] for key in fresh}, "metric")
    losses = model.metrics["seed_losses"]
    assert model.metrics["final_loss"] == losses.min() and np.isfinite(losses).all()
    assert model.at["seed"] == model.config.axes[-1][1][int(np.argmin(losses))]


def test_unknown_name_raises_one_line_listing_the_valid_ones():
    for call in (zoo.load, zoo.config, zoo.describe):
        with pytest.raises(tm.UserError) as info:
            call("hexagon")
        message = str(info.value)
        assert "\n" not in message and "hexagon" in message
        shown = message.split("allowed: ")[1].removesuffix(f", … ({len(NAMES)} in all)")
        assert shown.split(", ") == NAMES[:8]  # one line: the first 8, then the count


@pytest.mark.slow  # both entries in the slow suite (issue 22's test budget; 6 s and 12 s)
@pytest.mark.parametrize("name", ["square_antiprism", "abs_circuit"])
def test_build_of_one_entry_reproduces_the_shipped_model(tmp_path, name):
    """Rebuilding gives the shipped model: the same config, the same kept seed and labels,
    weights and metrics within the measured cross-machine tolerance (tests/portable.py:
    the files were built elsewhere, so their bits are not expected here). Two cheap
    entries, a tied and an untied kind; the shipped files were built with 2 CPU devices
    and this process has 1."""
    shipped = zoo.load(name)
    # Not a near tie: with each loss known to TOLERANCE["loss"] across machines, two seeds
    # can swap only if they lie within twice that. (Shipped gaps: square_antiprism 2.2e-3
    # of the loss, abs_circuit 1.2; measured cross-machine moves of a loss: up to 2.2e-6.
    # basic_linear, rebuilt here before, has two seeds 2.8e-5 apart: the linear model's
    # loss is rotation-invariant, so they found the same solution and either may be kept.)
    best, second = np.sort(shipped.metrics["seed_losses"])[:2]
    assert second - best > 2 * TOLERANCE["loss"]["rtol"] * best, (
        f"{name}: seeds nearly tied ({best}, {second}); another machine may keep the other")
    (path,) = zoo_build.build([name], out_dir=tmp_path, quiet=True)
    assert path == tmp_path / f"{name}.npz"
    fresh = zoo.load(name, path)
    assert fresh.config == shipped.config
    assert dict(fresh.at) == dict(shipped.at)  # the same seed kept
    assert_close_elsewhere(fresh.params, shipped.params, "trained")
    assert_close_elsewhere(fresh.metrics, shipped.metrics, "trained")


def test_the_cross_machine_tolerance_still_sees_a_real_change(models):
    """The tolerances of tests/portable.py pass rounding-sized differences and fail what a
    real change does: 100 training steps fewer moved abs_circuit's weights 1.3e-3
    (basic_linear's 5e-3), and a relabelled feature is never within tolerance."""
    model = models["abs_circuit"]
    params = {k: v.astype(np.float64) for k, v in model.params.items()}
    assert_close_elsewhere({k: v + 2e-6 for k, v in params.items()}, model.params, "trained")
    for key in params:
        moved = dict(params)
        moved[key] = params[key] + np.where(np.arange(params[key].size) == 0, 1.3e-3, 0.0
                                            ).reshape(params[key].shape)
        with pytest.raises(AssertionError, match=key):
            assert_close_elsewhere(moved, model.params, "trained")
    metrics = dict(model.metrics)
    labels = metrics["polytope"].copy()
    labels[0] = "other" if labels[0] != "other" else "digon"
    with pytest.raises(AssertionError, match="polytope"):
        assert_close_elsewhere({**metrics, "polytope": labels}, metrics, "metric")
    with pytest.raises(AssertionError, match="final_loss"):
        assert_close_elsewhere({**metrics, "final_loss": metrics["final_loss"] * 1.01},
                               metrics, "metric")


def test_cli_lists_every_entry_with_a_line_each():
    result = run_cli("zoo", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    bad = run_cli("zoo", "build", "hexagon")
    assert bad.returncode == 2 and "unknown zoo model; allowed: intro_dense" in bad.stderr


def test_shipped_files_are_small(models):
    from importlib.resources import files

    for name in NAMES:
        size = files("toymodels").joinpath("zoo_data", f"{name}.npz").stat().st_size
        assert size < 16_000, (name, size)


# ---- each entry's documented property


def test_intro_dense_two_orthogonal_features(models):
    W = models["intro_dense"].W
    norms = np.linalg.norm(W, axis=0)
    np.testing.assert_allclose(norms[:2], 1.0, atol=0.05)
    assert (norms[2:] < 0.1).all(), norms
    assert abs(_cos(W)[0, 1]) < 0.05


def test_intro_digons_two_antipodal_pairs(models):
    model = models["intro_digons"]
    D = model.metrics["feature_dimensionality"]
    np.testing.assert_allclose(D[:4], 0.5, atol=0.03)
    assert model.metrics["feature_norm"][4] < 0.1
    assert list(model.metrics["polytope"]) == ["digon"] * 4 + ["unrepresented"]


def test_intro_pentagon_five_features_at_two_fifths(models):
    model = models["intro_pentagon"]
    np.testing.assert_allclose(model.metrics["feature_dimensionality"], 0.4, atol=0.03)
    assert list(model.metrics["polytope"]) == ["pentagon"] * 5
    assert (model.b < 0).all()  # negative biases discard the positive interference
    angles = np.sort(np.arctan2(model.W[1], model.W[0]))
    gaps = np.degrees(np.diff(np.append(angles, angles[0] + 2 * np.pi)))
    np.testing.assert_allclose(gaps, 72.0, atol=6.0)


def test_basic_series_superposition_grows_with_sparsity(models):
    dense, mid, sparse = (models[n] for n in ("basic_p1", "basic_p0.1", "basic_p0.001"))
    W = dense.W
    np.testing.assert_allclose(W[:, :5].T @ W[:, :5], np.eye(5), atol=0.05)
    assert (np.linalg.norm(W[:, 5:], axis=0) < 0.1).all()
    counts = [m.metrics["n_represented"] for m in (dense, mid, sparse)]
    assert counts[0] == 5 and 8 <= counts[1] <= 11 and counts[2] >= 11, counts
    for model in (mid, sparse):
        on = model.metrics["feature_norm"] > 0.5
        in_superposition = model.metrics["superposition"][on] > 0.1
        assert in_superposition.mean() >= (0.8 if model is mid else 1.0)
    assert (sparse.b < -0.05).sum() >= 8  # negative biases at high sparsity


def test_basic_linear_only_the_top_five_orthogonal(models):
    W = models["basic_linear"].W
    np.testing.assert_allclose(W[:, :5].T @ W[:, :5], np.eye(5), atol=0.05)
    assert (np.linalg.norm(W[:, 5:], axis=0) < 0.05).all()


def test_dropout_represents_fewer_features_than_its_twin(models):
    with_dropout = models["dropout"].metrics["n_represented"]
    without = models["basic_p0.1"].metrics["n_represented"]
    assert with_dropout <= without - 2, (with_dropout, without)
    assert models["dropout"].at["dropout"] == 0.3 and models["basic_p0.1"].at["dropout"] == 0.0


def test_l1_sparse_keeps_the_top_five_dedicated(models):
    model, twin = models["l1_sparse"], models["basic_p0.1"]
    assert list(model.metrics["polytope"][:5]) == ["dedicated"] * 5
    assert (model.metrics["feature_norm"][5:] < 0.1).all()
    assert model.metrics["final_loss"] > twin.metrics["final_loss"]


def test_tetrahedron_four_features_at_three_quarters(models):
    model = models["tetrahedron"]
    np.testing.assert_allclose(model.metrics["feature_dimensionality"], 0.75, atol=0.03)
    assert list(model.metrics["polytope"]) == ["tetrahedron"] * 4
    off = _cos(model.W)[~np.eye(4, dtype=bool)]
    np.testing.assert_allclose(off, -1 / 3, atol=0.05)


def test_square_antiprism_eight_features_at_three_eighths(models):
    model = models["square_antiprism"]
    np.testing.assert_allclose(model.metrics["feature_dimensionality"], 3 / 8, atol=0.03)
    assert list(model.metrics["polytope"]) == ["square_antiprism"] * 8


def test_correlated_set_members_are_orthogonal(models):
    model = models["correlated_pairs"]
    cos = _cos(model.W)
    assert abs(cos[0, 1]) < 0.2 and abs(cos[2, 3]) < 0.2, cos
    assert (model.metrics["feature_norm"] > 0.9).all()
    assert (np.sort(cos, axis=1)[:, 0] < -0.9).all()  # each antipodal to one of the other set


def test_anticorrelated_set_members_are_antipodal(models):
    model = models["anticorrelated_pairs"]
    cos = _cos(model.W)
    assert cos[0, 1] < -0.9 and cos[2, 3] < -0.9, cos
    assert np.abs(cos[:2, 2:]).max() < 0.2  # the two sets orthogonal
    assert (model.metrics["feature_norm"] > 0.9).all()


def test_privileged_basis_top_five_monosemantic(models):
    W = models["privileged_basis"].W  # [neuron, feature]
    share = (W[:, :5] ** 2).max(axis=0) / (W[:, :5] ** 2).sum(axis=0)
    assert (share > 0.95).all(), share
    assert len(set(np.abs(W[:, :5]).argmax(axis=0))) == 5  # five different neurons
    assert (np.linalg.norm(W[:, 5:], axis=0) < 0.3).all()


def test_abs_circuit_positive_and_negative_neuron_per_feature(models):
    model = models["abs_circuit"]
    W1 = model.W  # [neuron, feature]
    for i in range(3):
        for sign in (1, -1):
            k = np.argmax(sign * W1[:, i])
            assert sign * W1[k, i] > 0.5, W1
            others = np.delete(np.abs(W1[k]), i)
            assert (others < 0.1 * abs(W1[k, i])).all(), W1[k]  # a monosemantic neuron
    x = np.random.default_rng(2).uniform(-1, 1, size=(256, 3))
    np.testing.assert_allclose(model(x), np.abs(x), atol=0.05)


def test_metrics_use_the_analysis_module(models):
    W = models["square_antiprism"].W  # the stored norms were computed on the build machine
    np.testing.assert_allclose(models["square_antiprism"].metrics["feature_norm"],
                               np.asarray(analysis.feature_norms(W)), **TOLERANCE["metric"])


def test_pick_run_takes_the_coordinate_then_the_lowest_finite_loss_over_seeds():
    import xarray as xr

    loss = np.array([[0.3, np.nan, 0.2], [0.1, 0.5, 0.4]])  # [p, seed]
    ds = xr.Dataset({"final_loss": (("p", "seed"), loss)},
                    coords={"p": [0.5, 0.05], "seed": [0, 1, 2]})
    assert zoo_build.pick_run(ds, (("p", 0.5),)) == {"p": 0, "seed": 2}
    assert zoo_build.pick_run(ds, (("p", 0.05),)) == {"p": 1, "seed": 0}
    with pytest.raises(ValueError, match="pick one"):
        zoo_build.pick_run(ds, ())
    with pytest.raises(ValueError, match="not a value"):
        zoo_build.pick_run(ds, (("p", 0.2),))


def test_missing_file_says_how_to_build_it(tmp_path):
    with pytest.raises(tm.UserError, match="toymodels zoo build intro_dense"):
        zoo.load("intro_dense", tmp_path / "nothing.npz")
