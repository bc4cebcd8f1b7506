"""`analyze(ds)` on small hand-built datasets: dims, coords, dtypes, values, purity."""

import jax
import numpy as np
import pytest
import xarray as xr

from toymodels.analysis import (
    EXTRAS,
    PHASES,
    POLYTOPE_KINDS,
    analyze,
    attack_inputs,
    attack_noise,
    dims_per_feature,
    feature_dimensionality,
    feature_norms,
    features_per_neuron,
    n_monosemantic,
    n_represented,
    phase,
    polytope_counts,
    polytopes,
    superposition,
    vulnerability,
)
from toymodels.analysis import basis, batching, norms, variables
from toymodels.evaluation import eval_key
from toymodels.spec import ModelSpec, Spec

H, F = 3, 7


def pentagon_digon() -> np.ndarray:
    """Pentagon in dims 0-1 and an antipodal pair in dim 2, [3, 7]."""
    t = 2 * np.pi * np.arange(5) / 5
    W = np.zeros((H, F), np.float32)
    W[:2, :5] = np.stack([np.cos(t), np.sin(t)])
    W[2, 5:] = [1.0, -1.0]
    return W


def run_weights() -> np.ndarray:
    """Six distinct models on a (sparsity=2, seed=3) grid, [2, 3, H, F]."""
    rng = np.random.default_rng(0)
    orthonormal = np.eye(H, F, dtype=np.float32)  # last four features unrepresented
    models = [
        pentagon_digon(),
        orthonormal,
        rng.normal(size=(H, F)).astype(np.float32),
        np.zeros((H, F), np.float32),
        pentagon_digon()[:, ::-1].copy(),  # last feature in the pentagon
        0.3 * pentagon_digon(),  # nothing represented
    ]
    return np.stack(models).reshape(2, 3, H, F)


def make_dataset() -> xr.Dataset:
    W = run_weights()
    return xr.Dataset(
        {
            "W": (("sparsity", "seed", "hidden", "feature"), W),
            "b": (("sparsity", "seed", "feature"), np.zeros((2, 3, F), np.float32)),
            "loss": (("sparsity", "seed", "step"), np.ones((2, 3, 4), np.float32)),
            "density": (("sparsity", "feature"), np.array([[0.1] * F, [0.01] * F])),
            "importance": (("feature",), 0.9 ** np.arange(F)),
        },
        coords={"sparsity": [0.9, 0.99], "seed": [0, 1, 2], "step": [0, 10, 20, 30]},
        attrs={"name": "hand-built"},
    )


EXPECTED_DIMS = {
    "feature_norm": ("sparsity", "seed", "feature"),
    "superposition": ("sparsity", "seed", "feature"),
    "feature_dimensionality": ("sparsity", "seed", "feature"),
    "dims_per_feature": ("sparsity", "seed"),
    "n_represented": ("sparsity", "seed"),
    "polytope": ("sparsity", "seed", "feature"),
    "polytope_counts": ("sparsity", "seed", "polytope_kind"),
    "phase": ("sparsity", "seed"),
    "features_per_neuron": ("sparsity", "seed", "hidden"),
    "n_monosemantic": ("sparsity", "seed"),
    "vulnerability": ("sparsity", "seed"),
}


def test_dims_coords_dtypes_and_attrs():
    ds = make_dataset()
    out = analyze(ds, adversarial=True)
    for name, dims in EXPECTED_DIMS.items():
        assert out[name].dims == dims, name
        assert out[name].attrs["description"], name
    assert out["polytope_kind"].values.tolist() == list(POLYTOPE_KINDS)
    assert out["sparsity"].values.tolist() == [0.9, 0.99]
    assert out["seed"].values.tolist() == [0, 1, 2]
    for name in ("feature_norm", "superposition", "feature_dimensionality"):
        assert out[name].dtype == np.float32
    assert out["polytope"].dtype.kind == "U" and out["phase"].dtype.kind == "U"
    assert np.issubdtype(out["n_represented"].dtype, np.integer)
    assert np.issubdtype(out["polytope_counts"].dtype, np.integer)
    assert out["vulnerability"].dtype == np.float32
    assert np.issubdtype(out["features_per_neuron"].dtype, np.integer)
    assert "asymmetric_neurons" not in out and "dimensionality_snapshots" not in out
    for name in ("W", "b", "loss"):  # other variables, coords and attrs are kept
        assert out[name].identical(ds[name])
    assert out.attrs == ds.attrs


def test_input_is_not_mutated():
    ds = make_dataset()
    before = ds.copy(deep=True)
    out = analyze(ds)
    assert ds.identical(before)
    assert "polytope" not in ds and out is not ds


def test_values_equal_single_model_functions():
    out = analyze(make_dataset(), adversarial=True)
    W = run_weights()
    per_feature = {
        "feature_norm": feature_norms,
        "superposition": superposition,
        "feature_dimensionality": feature_dimensionality,
    }
    for i in range(2):
        for j in range(3):
            cell = out.isel(sparsity=i, seed=j)
            for name, fn in per_feature.items():
                expected = fn(W[i, j])
                np.testing.assert_allclose(cell[name], expected, rtol=1e-6, atol=1e-7)
            dpf = dims_per_feature(W[i, j])
            np.testing.assert_allclose(cell["dims_per_feature"], dpf, rtol=1e-6)
            assert int(cell["n_represented"]) == int(n_represented(W[i, j]))
            assert str(cell["phase"].values) == PHASES[int(phase(W[i, j]))]
            labels = polytopes(W[i, j])
            assert cell["polytope"].values.tolist() == labels.tolist()
            counts = polytope_counts(labels)
            np.testing.assert_array_equal(cell["polytope_counts"], counts)
            fpn = features_per_neuron(W[i, j])
            np.testing.assert_array_equal(cell["features_per_neuron"], fpn)
            assert int(cell["n_monosemantic"]) == int(n_monosemantic(W[i, j]))
            x = attack_inputs(attack_noise(F), np.full(F, [0.1, 0.01][i], np.float32))
            importance = (0.9 ** np.arange(F)).astype(np.float32)
            v = vulnerability(W[i, j], np.zeros(F, np.float32), x, importance)
            np.testing.assert_allclose(cell["vulnerability"], v, rtol=1e-5, atol=1e-6)


def test_known_answers_in_the_grid():
    out = analyze(make_dataset(), adversarial=True)
    first = out.isel(sparsity=0, seed=0)
    assert first["polytope"].values.tolist() == ["pentagon"] * 5 + ["digon"] * 2
    assert first["polytope_counts"].sel(polytope_kind="pentagon") == 5
    assert str(first["phase"].values) == "superposition"
    np.testing.assert_allclose(first["dims_per_feature"], 3 / 7, rtol=1e-6)
    assert str(out["phase"].isel(sparsity=0, seed=1).values) == "unrepresented"
    zero = out.isel(sparsity=1, seed=0)
    assert set(zero["polytope"].values.tolist()) == {"unrepresented"}
    assert np.isinf(zero["dims_per_feature"])
    for name in ("feature_norm", "superposition", "feature_dimensionality"):
        assert not np.isnan(out[name]).any()
    assert (out["polytope_counts"].sum("polytope_kind") == F).all()
    orthonormal = out.isel(sparsity=0, seed=1)
    assert orthonormal["features_per_neuron"].values.tolist() == [1, 1, 1]
    assert int(orthonormal["n_monosemantic"]) == 3
    assert float(orthonormal["vulnerability"]) == pytest.approx(1.0, abs=1e-4)
    assert float(first["vulnerability"]) > 1.5  # pentagon and digon: superposition
    assert zero["features_per_neuron"].values.tolist() == [0, 0, 0]
    assert float(zero["vulnerability"]) == 0.0


def test_no_run_axes_and_any_dim_order():
    W = pentagon_digon()
    single = analyze(xr.Dataset({"W": (("hidden", "feature"), W)}))
    assert single["phase"].dims == () and str(single["phase"].values) == "superposition"
    assert single["polytope"].dims == ("feature",)
    grid = make_dataset()
    order = ("feature", "seed", "hidden", "sparsity")
    shuffled = grid.assign(W=grid["W"].transpose(*order))
    out = analyze(shuffled)
    assert out["polytope"].dims == ("seed", "sparsity", "feature")
    expected = analyze(grid)["polytope"].transpose("seed", "sparsity", "feature")
    assert (out["polytope"] == expected).all()


def test_chunking_changes_nothing(monkeypatch):
    ds = make_dataset()
    whole = analyze(ds, extras=tuple(EXTRAS))  # every extra: vulnerability too
    monkeypatch.setattr(batching, "CHUNK_ELEMENTS", 4 * F * F)  # 4 runs a chunk
    attack_run = F * F * variables.adversarial.ATTACK_BATCH
    monkeypatch.setattr(variables, "ATTACK_CHUNK_ELEMENTS", 4 * attack_run)
    monkeypatch.setattr(variables, "ROTATION_CHUNK_ELEMENTS", 4 * basis.N_ROTATIONS * H * F)
    chunked = analyze(ds, extras=tuple(EXTRAS))
    assert chunked.identical(whole)


def test_vulnerability_only_on_request():
    assert "vulnerability" not in analyze(make_dataset())
    assert "vulnerability" in analyze(make_dataset(), adversarial=True)


def test_missing_or_misshapen_w_raises():
    with pytest.raises(ValueError, match="needs a variable W"):
        analyze(xr.Dataset({"b": (("feature",), np.zeros(3))}))
    with pytest.raises(ValueError, match="'hidden', 'feature'"):
        analyze(xr.Dataset({"W": (("h", "feature"), np.zeros((2, 3)))}))


def test_extras_only_on_request_and_the_rest_unchanged():
    ds = make_dataset()
    plain = analyze(ds)
    assert not set(EXTRAS) & set(plain.data_vars)
    full = analyze(ds, extras=tuple(EXTRAS))
    assert full["basis_kurtosis_p"].dims == ("sparsity", "seed")
    assert full["rescaled_loss"].dims == ("sparsity", "seed", "rescale")
    assert full["vulnerability"].dims == ("sparsity", "seed")
    for name in EXTRAS:
        assert full[name].attrs["description"], name
    # the rescaled_loss extra adds its after-the-norm twin too (no norm here: equal)
    np.testing.assert_array_equal(full["readout_rescaled_loss"], full["rescaled_loss"])
    assert full.drop_vars([*EXTRAS, "readout_rescaled_loss"]).identical(plain)
    assert analyze(ds, extras=["vulnerability"]).identical(analyze(ds, adversarial=True))
    assert analyze(ds, extras="basis_kurtosis_p").identical(
        analyze(ds, extras=["basis_kurtosis_p"]))


@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
def test_extras_equal_their_one_run_functions():
    ds = make_dataset()
    out = analyze(ds, extras=["basis_kurtosis_p", "rescaled_loss"])
    W = run_weights()
    spec = Spec(ModelSpec("relu_output", F, H))
    for s in range(2):
        density = ds["density"].values[s].astype(np.float32)
        importance = ds["importance"].values.astype(np.float32)
        for seed in range(3):
            p = basis.rotation_pvalue(W[s, seed], jax.random.key(0))
            assert float(out["basis_kurtosis_p"][s, seed]) == pytest.approx(float(p), abs=1 / 256)
            loss = norms.rescaled_loss_one(W[s, seed], np.zeros(F, np.float32), density,
                                           importance, eval_key(0), spec)["rescaled_loss"]
            np.testing.assert_allclose(out["rescaled_loss"][s, seed], loss, rtol=1e-5)
    assert out["rescale"].values.tolist() == list(norms.RESCALES)


def test_unknown_extra_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown analysis extra 'nope'; valid: "
                                         "basis_kurtosis_p, rescaled_loss, vulnerability"):
        analyze(make_dataset(), extras=["nope"])
