"""The bar's progress from inside a compiled block (toymodels.progress): the reports add up
to the block's work, and a program that reports computes the same bits as one that does
not (the toy and SAE trainers' blocks, an SGLD estimate)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels import sgld
from toymodels.progress import TICKS, Meter, ticker
from toymodels.sweep import ChunkBar
from toymodels.trainers import parse_config, trainer_of

TOY = {"model": {"n_features": 5, "n_hidden": 2}, "train": {"steps": 300, "log_every": 30},
       "sweep": {"seed": [0, 1], "feature_probability": [0.1, 0.5]}}
SAE = {"sae": {"source": "synthetic", "n_features": 8, "n_hidden": 4, "kind": "relu", "width": 6},
       "data": {"feature_probability": 0.1}, "train": {"steps": 200, "batch_size": 256, "log_every": 20},
       "sweep": {"seed": [0, 1], "l1_coefficient": [0.001, 0.01]}}


def test_a_ticker_reports_every_nth_step_of_a_scan_and_its_share_of_the_work():
    n, share, calls = 1000, 0.5, []
    tick = ticker(calls.append, n, share)

    def body(c, t):
        tick(t)
        return c + 1, None

    jax.block_until_ready(jax.jit(lambda: jax.lax.scan(body, 0, jnp.arange(n)))())
    every = n // TICKS  # 15: steps 14, 29, ..., 989 report
    assert len(calls) == n // every == 66
    assert sum(calls) == pytest.approx(share * 66 * 15 / 1000)


def _block_outputs(raw: dict, report):
    """One block of the config's first group, from its trainer's `make_block`."""
    config = parse_config(raw)
    trainer = trainer_of(config)
    config = trainer.resolve(config)
    spec, grid = config.groups[0].spec, trainer.expand(config)[0]
    R = -(-grid.n_runs // trainer.block_size(spec)) * trainer.block_size(spec)
    index = np.minimum(np.arange(R), grid.n_runs - 1)
    seeds, slot = np.unique(grid.seed[index], return_inverse=True)
    runs = jax.tree.map(lambda a: a[index], grid.runs)
    block = jax.jit(trainer.make_block(spec, config.seed, report))
    return jax.device_get(block(seeds, slot.astype(np.int32), *runs))


@pytest.mark.slow  # 9-12 s (the default suite took 441 s of its 420; CI runs it)
@pytest.mark.parametrize("raw", [TOY, pytest.param(SAE, marks=pytest.mark.slow)], ids=["toy", "sae"])
def test_a_reporting_block_computes_the_bits_of_a_silent_one(raw):
    meter = Meter()
    loud, silent = _block_outputs(raw, meter.report), _block_outputs(raw, None)
    assert loud.keys() == silent.keys()
    for name in silent:
        np.testing.assert_array_equal(loud[name], silent[name], err_msg=name)
    done = meter.take()  # the whole block, but for the steps after the last report
    assert 1 - 1 / TICKS <= done <= 1 + 1e-9
    assert meter.take() == 0.0


def test_an_sgld_estimate_with_ticks_has_the_bits_of_one_without():
    def loss(w):
        return 0.5 * jnp.sum(jnp.array([1.0, 3.0]) * w["w"] ** 2)

    calls = []
    args = (loss, {"w": jnp.zeros(2)}, jax.random.key(0), 100.0, 1e-3, 10.0)
    kwargs = dict(chains=3, draws=200, burn_in=56)
    quiet = jax.jit(lambda: sgld.estimate(*args, **kwargs))()
    loud = jax.jit(lambda: sgld.estimate(*args, **kwargs, tick=ticker(calls.append, 256)))()
    for a, b in zip(jax.tree.leaves(quiet), jax.tree.leaves(loud)):
        np.testing.assert_array_equal(a, b)
    assert len(calls) == TICKS  # 256 steps, every 4th: once per step of the chains' one scan
    assert sum(calls) == pytest.approx(1.0)


class _Bar:
    def __init__(self):
        self.n, self.postfix = 0.0, "compiling"

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def update(self, step):
        assert step >= 0
        self.n += step


def test_a_chunks_bar_moves_with_its_reports_short_of_the_end_until_it_is_saved():
    bar = _Bar()
    part = ChunkBar(bar, 40)
    part.advance(0.0)
    assert bar.postfix == "compiling"
    part.advance(0.25)
    assert bar.n == pytest.approx(10) and bar.postfix == ""
    part.advance(0.9)  # reports that overshoot (late ones of a chunk) stop short of done
    assert bar.n == pytest.approx(0.99 * 40)
    part.close()
    assert bar.n == pytest.approx(40)
