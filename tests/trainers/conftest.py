"""The LLC tests' source: four linear models x' = WᵀW x (n = m = 3, no bias) trained to
WᵀW = I, a regular model with lambda = 3 on the quotient by O(3) (tests/trainers/test_llc.py
derives the curvature 8/9 of each of its 6 transverse directions)."""

import numpy as np
import pytest

import toymodels as tm

from helpers import LLC_IDENTITY


@pytest.fixture(scope="package")
def identity_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("llc") / "identity"
    tm.run_sweep(tm.parse_config(LLC_IDENTITY), out, quiet=True)
    W = tm.load(out).W.values
    assert np.abs(np.einsum("rhf,rhg->rfg", W, W) - np.eye(3)).max() < 1e-5
    return out
