"""Small, seeded trainings that reproduce the paper's qualitative results (section 1.7).

Each is a full training (3,000-5,000 steps, 5-8 s on 2 cores), so the module is `slow`
(`python -m pytest -m slow`; CI runs it). The default suite checks most of the same results
on the zoo's shipped models (tests/test_zoo.py: basic_p1 dense, basic_p0.001 at S = 0.999,
basic_linear at S = 0.9), and that a rebuild of basic_linear reproduces it; the 5 -> 5
identity is checked here only.
"""

import numpy as np
import pytest

import toymodels as tm

pytestmark = pytest.mark.slow


def _train(kind, F, H, sparsity, steps, decay=None, seeds=(0,), tmp=None):
    data = {"sparsity": sparsity, **({"importance_decay": decay} if decay else {})}
    cfg = tm.parse_config({
        "name": f"{kind}-{F}-{H}", "model": {"kind": kind, "n_features": F, "n_hidden": H},
        "data": data, "train": {"steps": steps, "log_every": steps // 10},
        "sweep": {"seed": list(seeds)},
    })
    return tm.load(tm.run_sweep(cfg, tmp / cfg.name, quiet=True))


def _norms(W):
    return np.linalg.norm(W, axis=-2)  # [..., F]


def test_as_many_dims_as_features_dense_learns_the_identity(tmp_path):
    ds = _train("relu_output", 5, 5, 0.0, 4000, tmp=tmp_path)
    W = ds.W.isel(seed=0).values
    assert float(ds.final_loss.isel(seed=0)) < 1e-3
    np.testing.assert_allclose(W.T @ W, np.eye(5), atol=0.05)


def test_dense_decaying_importance_keeps_the_top_five_orthogonal(tmp_path):
    """20 -> 5, I = 0.7^i, S = 0: exactly the five most important features, near-orthogonal
    (no superposition); the rest are dropped."""
    ds = _train("relu_output", 20, 5, 0.0, 3000, decay=0.7, tmp=tmp_path)
    W = ds.W.isel(seed=0).values
    represented = np.flatnonzero(_norms(W) > 0.5)
    np.testing.assert_array_equal(represented, np.arange(5))
    unit = W[:, :5] / _norms(W[:, :5])
    off_diagonal = unit.T @ unit - np.eye(5)
    assert np.abs(off_diagonal).max() < 0.05
    assert _norms(W)[5:].max() < 0.2


@pytest.mark.parametrize("kind", ["relu_output", "linear"])
def test_high_sparsity_superposes_only_with_relu(tmp_path, kind):
    """20 -> 5, I = 0.7^i, S = 0.999: the ReLU-output model represents more than five
    features; the linear model never more than five."""
    ds = _train(kind, 20, 5, 0.999, 5000, decay=0.7, seeds=(0, 1), tmp=tmp_path)
    n_represented = (_norms(ds.W.values) > 0.5).sum(axis=-1)  # [seed]
    if kind == "relu_output":
        assert (n_represented > 5).all(), n_represented
    else:
        assert (n_represented <= 5).all(), n_represented
