import os
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")
# Two test workers (pytest-xdist, pyproject addopts) share one GPU: neither may take 75% of it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# JAX's persistent compilation cache, shared by both workers, the command-line tests'
# subprocesses and the default and slow runs (its key is the compiled program, so a changed
# program is compiled afresh): the suite compiles many programs more than once (every
# engine builds its own jitted closures). Measured on 2 cores: 5% less CPU on a cold cache,
# 27% on a warm one. Set JAX_COMPILATION_CACHE_DIR to another folder (or "") to change it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "toymodels-tests-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(0)
