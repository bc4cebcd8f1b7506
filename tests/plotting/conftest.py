"""The plotting tests' shared synthetic results (`helpers.synthetic_results`)."""

import pytest

from helpers import synthetic_results


@pytest.fixture(scope="module")
def ds():
    """3 x 2 grid with 2 seeds, F = 5, H = 2."""
    return synthetic_results(
        {
            "sparsity": [0.0, 0.9, 0.99],
            "relative_importance": [0.1, 10.0],
            "seed": [0, 1],
        }
    )
