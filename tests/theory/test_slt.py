"""Closed forms of singular learning theory: the free-energy crossing (REFERENCE E)."""

import numpy as np
import pytest

from toymodels import theory


def test_free_energy_crossing():
    n = theory.free_energy_crossing(-0.01, -1.0, 5.0)
    assert -0.01 * n - np.log(n) + 5.0 == pytest.approx(0.0, abs=1e-9)
    assert theory.free_energy_crossing(0.01, 1.0, 1.0) is None  # positive for n >= 1
