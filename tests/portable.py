"""Comparing numbers made here with numbers made on another machine (issue 10).

Bit-identity is a promise about ONE machine: there, chunk size, device count, process count
and resume change no bit of a run, and the tests of that stay exact (tests/test_sweep.py,
tests/test_train.py). XLA emits other code for another instruction set or a GPU, so float
bits are not portable: anything compared with a file made elsewhere (the zoo's shipped
weights and metrics in toymodels/zoo_data/) is compared with a tolerance for its kind of
quantity, set from a measured difference. Labels (polytope names, n_represented, the kept
seed) are compared exactly.

Measured on the 2-core Intel Xeon (AVX-512) the zoo was built on, making XLA emit code for
another instruction set with XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 (AVX2 gave the default's
bits there, so it measures nothing on that machine; SSE4_2 changed bits of every entry):
  * `model_metrics` of the shipped weights recomputed: max |diff| 4.8e-7 (superposition;
    feature_dimensionality 1.2e-7, feature_norm 0). On a 2-core AMD EPYC (AVX2): 6e-8.
  * the whole zoo rebuilt (`toymodels zoo build`, up to 10,000 steps): weights max |diff|
    1.1e-6 for abs_circuit, 3.3e-7 for basic_linear (the entries the rebuild test trains),
    2.2e-6 over every entry except l1_sparse, where the L1 kink of the dead features
    amplifies it to 3.4e-4 (so l1_sparse is not one to rebuild in a test). On the EPYC:
    up to 6e-7. Metrics of rebuilt weights moved as much as the weights (l1_sparse aside).
  * losses rebuilt (final_loss, seed_losses): max relative diff 2.2e-6 (abs_circuit;
    basic_linear 1.1e-7); near-zero losses move in absolute terms instead
    (anticorrelated_pairs: loss 3.8e-10, |diff| 1.5e-12).
  * labels: identical for all 15 entries, and so was the kept seed; no shipped label sits
    near a threshold (the closest: a basic_p0.001 norm 0.014 from the 0.5 cut, an
    interference 0.008 from the 0.1 edge cut; 1e-4 noise on the weights flips none).
What a real change does, for scale (basic_linear / abs_circuit rebuilt with 100 steps
fewer): weights move 5e-3 / 1.3e-3; another seed or another geometry moves them by O(1).
The tolerances below are 20-30x the worst measured difference and 40x below that.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

TOLERANCE = {
    # float metrics recomputed here from the same (shipped) weights: rounding only;
    # dimensionless and O(1) (norms, dimensionalities, interference). 21x 4.8e-7.
    "metric": {"rtol": 0.0, "atol": 1e-5},
    # trained parameters, and metrics of them, after retraining: rounding amplified over
    # training. Weights are O(1). 27x abs_circuit's 1.1e-6, 14x the zoo's worst 2.2e-6.
    "trained": {"rtol": 0.0, "atol": 3e-5},
    # any quantity named *loss* (final_loss, seed_losses, their standard errors): relative,
    # 45x 2.2e-6, with an absolute floor for losses near zero (66x 1.5e-12).
    "loss": {"rtol": 1e-4, "atol": 1e-10},
}


def kind_of(key: str, floats: str) -> str:
    """The tolerance kind of the float quantity `key`: "loss" for anything named *loss*
    (final_loss, seed_losses, final_loss_se, ...), else `floats`."""
    return "loss" if "loss" in key else floats


def assert_close_elsewhere(actual: Mapping, expected: Mapping, floats: str) -> None:
    """Every quantity of `expected` (made on another machine) against `actual` (made here).

    Floats within `TOLERANCE[kind_of(key, floats)]`; anything else (labels, counts,
    strings) exactly. The keys must be the same.

    Args:
      actual: {name: array or scalar} computed here.
      expected: {name: array or scalar} read from a file made elsewhere.
      floats: the kind of the float quantities that are not losses, "metric" or "trained".
    """
    assert floats in TOLERANCE and floats != "loss", floats
    assert set(actual) == set(expected), (sorted(actual), sorted(expected))
    for key, want in expected.items():
        got, want = np.asarray(actual[key]), np.asarray(want)
        if want.dtype.kind == "f":
            kind = kind_of(key, floats)
            np.testing.assert_allclose(got, want, **TOLERANCE[kind],
                                       err_msg=f"{key} (tolerance {kind!r})")
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{key} (exact)")
