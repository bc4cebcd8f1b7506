"""`analyze` of SPD results (toymodels.analysis.spd): decompositions written by hand into a
Dataset of the trainer's layout, with scores known in closed form.

The target is the hand-built model of three dedicated features, W = I_3 (W_in = Σ_i e_i e_iᵀ,
the same for W_out). Its exact decomposition has C = 4 subcomponents in a shuffled order:
subcomponent SLOT[i] is feature i's piece (U = e_i, V = e_i in both matrices) and the
remaining one is zero. Every causal-importance MLP is γ(h) = GELU(h) (one gate unit of
weight 1, biases 0), so on x = e_i the importance of feature j's subcomponent is
GELU(δ_ij) = 0.841 δ_ij, and the zero subcomponent's is GELU(0) = 0: the one-hot pattern is
the identity and exactly three subcomponents are live. On an input of the law (each
feature on with probability 0.05, Uniform[0, 1] when on) a feature's subcomponent fires
above 0.1 when x_i > 0.17, which 4,096 draws make certain (P(never) = (1 - 0.05 x 0.83)^4096).

Dropping feature 1's subcomponent from W_in (U = V = 0) leaves it no piece: its best cosine
is 0 (every other subcomponent is orthogonal to e_1 e_1ᵀ), so MMCS(W_in) = (1 + 0 + 1) / 3,
the decomposition fails on feature 1, two subcomponents of W_in are live, and the one-hot
pattern has one error (feature 1's row never fires: n + F - 2k = 3 + 2 - 2 x 2 = 1).
"""

import itertools

import numpy as np
import pytest
import xarray as xr

from toymodels.analysis import analyze, spd
from toymodels.analysis.spd import lowest_loss_failure_rate

N, C = 3, 4
SLOT = (2, 0, 3)  # feature i's subcomponent; subcomponent 1 is zero
MATRIX_DIMS = {"W_in": ("hidden", "feature"), "W_out": ("feature", "hidden")}


def exact_dataset(missing: int | None = None) -> xr.Dataset:
    """Two runs (a `seed` axis) of the exact decomposition of W = I_3; with `missing`,
    W_in loses feature `missing`'s subcomponent in both runs."""
    variables = {}
    for name, (rows, cols) in MATRIX_DIMS.items():
        U, V = np.zeros((C, N), np.float32), np.zeros((C, N), np.float32)
        for i, c in enumerate(SLOT):
            if not (name == "W_in" and i == missing):
                U[c, i] = V[c, i] = 1.0
        run = lambda a: np.stack([a, a])  # noqa: E731
        variables.update({
            f"U_{name}": (("seed", "component", rows), run(U)),
            f"V_{name}": (("seed", "component", cols), run(V)),
            f"gate_in_w_{name}": (("seed", "component", "gate"), run(np.ones((C, 1), np.float32))),
            f"gate_in_b_{name}": (("seed", "component", "gate"), run(np.zeros((C, 1), np.float32))),
            f"gate_out_w_{name}": (("seed", "component", "gate"), run(np.ones((C, 1), np.float32))),
            f"gate_out_b_{name}": (("seed", "component"), run(np.zeros(C, np.float32))),
            f"target_{name}": (("seed", rows, cols), run(np.eye(N, dtype=np.float32))),
        })
    variables["target_b"] = (("seed", "feature"), np.zeros((2, N), np.float32))
    return xr.Dataset(variables, coords={"seed": [0, 1]},
                      attrs={"trainer": "spd", "threshold": 0.1, "identity": 0})


@pytest.fixture(scope="module")
def scored():
    """(exact, missing feature 1) analysed: one compilation serves both (same shapes)."""
    return analyze(exact_dataset()), analyze(exact_dataset(missing=1))


def test_an_exact_decomposition_scores_one_and_does_not_fail(scored):
    ds = scored[0]
    for name in MATRIX_DIMS:
        np.testing.assert_allclose(ds[f"mmcs_{name}"], 1.0, atol=1e-6)
        np.testing.assert_allclose(ds[f"ml2r_{name}"], 1.0, atol=1e-6)
        assert (ds[f"n_live_{name}"] == N).all() and (ds[f"ci_errors_{name}"] == 0).all()
    assert not ds.failed.any() and (ds.missed_feature == -1).all()
    np.testing.assert_allclose(ds.faithfulness, 0.0, atol=1e-12)
    assert ds.mmcs_W_in.dims == ("seed",) and ds.best_cosine_W_in.dims == ("seed", "feature")
    assert "long_name" in ds.mmcs_W_in.attrs and "description" in ds.failed.attrs
    # what analyze adds is exactly what its tables declare (the docs' reference reads them)
    declared = {k for name in MATRIX_DIMS for k in spd.matrix_variables(name)}
    declared |= set(spd.RUN_VARIABLES) | set(spd.FEATURE_VARIABLES)
    assert set(ds.data_vars) - set(exact_dataset().data_vars) == declared


def test_a_decomposition_missing_one_piece_fails_on_that_feature(scored):
    ds = scored[1]
    assert ds.failed.all() and (ds.missed_feature == 1).all()
    np.testing.assert_allclose(ds.mmcs_W_in, 2 / 3, atol=1e-6)
    np.testing.assert_allclose(ds.best_cosine_W_in.isel(seed=0), [1.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(ds.mmcs_W_out, 1.0, atol=1e-6)
    assert (ds.n_live_W_in == N - 1).all() and (ds.n_live_W_out == N).all()
    assert (ds.ci_errors_W_in == 1).all() and (ds.ci_errors_W_out == 0).all()
    # the missing piece is the faithfulness loss: ||e_1 e_1ᵀ||² over the 2 x 9 parameters
    np.testing.assert_allclose(ds.faithfulness, 1 / 18, rtol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_the_lowest_loss_of_k_fails_as_often_as_brute_force_over_every_subset(k):
    """Against enumerating every k-subset of 7 runs (one tie) and keeping its lowest loss."""
    rng = np.random.default_rng(k)
    failed = rng.random(7) < 0.5
    loss = rng.permutation([1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    loss[0] = np.nan  # never the lowest
    order = np.lexsort((np.arange(7), np.where(np.isnan(loss), np.inf, loss)))
    position = np.argsort(order)  # rank with ties broken by position
    subsets = list(itertools.combinations(range(7), k))
    brute = np.mean([failed[min(s, key=lambda i: position[i])] for s in subsets])
    assert lowest_loss_failure_rate(failed, loss, k) == pytest.approx(brute, abs=1e-12)
    if k == 1:
        assert lowest_loss_failure_rate(failed, loss, 1) == pytest.approx(failed.mean())


def test_when_every_failure_costs_more_the_lowest_of_k_fails_only_if_all_k_failed():
    """Closed form: C(4, k) / C(6, k) with 4 failures of 6."""
    failed = np.array([True, False, True, False, True, True])
    loss = np.where(failed, 2.0, 1.0) + np.arange(6) * 1e-3
    for k, expected in ((1, 4 / 6), (2, 6 / 15), (3, 4 / 20), (4, 1 / 15), (5, 0.0)):
        assert lowest_loss_failure_rate(failed, loss, k) == pytest.approx(expected)
    with pytest.raises(ValueError, match="k must be in 1..6"):
        lowest_loss_failure_rate(failed, loss, 7)
