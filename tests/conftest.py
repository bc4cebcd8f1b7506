import os

os.environ.setdefault("MPLBACKEND", "Agg")
# Two test workers (pytest-xdist, pyproject addopts) share one GPU: neither may take 75% of it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(0)
