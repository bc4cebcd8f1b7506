"""SynthSAEBench's table (toymodels.plotting.benchmark) on hand-built analysed results, and
the sweep files of the published protocol (sweeps/sae_synthbench_16k*.toml) against the
numbers SAELens publishes. No training here: the table's sweeps are run by hand
(docs/saes.md, "SynthSAEBench's table")."""

import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import toymodels as tm  # noqa: E402
from toymodels.limits import check_sizes  # noqa: E402
from toymodels.plotting import PLOTS  # noqa: E402
from toymodels.plotting.benchmark import (METRICS, PUBLISHED, benchmark_markdown,  # noqa: E402
                                          benchmark_rows, published_winners, winners)
from toymodels.trainers import trainer_of  # noqa: E402

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
NAMES = [n for n, _ in METRICS] + ["l0", "dead_fraction"]


def results(kinds, setting, values, l0, score):
    """An analysed SAE sweep of axes kind x setting x seed (3 seeds): l0[kind][value] the
    seeds' L0s, every metric `score(kind, value, seed)`."""
    seeds = [0, 1, 2]
    shape = (len(kinds), len(values), len(seeds))
    data = {n: np.zeros(shape) for n in NAMES}
    for i, kind in enumerate(kinds):
        for j, value in enumerate(values):
            data["l0"][i, j] = l0[kind][value]
            for name, _ in METRICS:
                data[name][i, j] = [score(kind, value, s) for s in seeds]
    dims = ("kind", setting, "seed")
    return xr.Dataset({n: (dims, v) for n, v in data.items()},
                      coords={"kind": kinds, setting: values, "seed": seeds},
                      attrs={"name": "bench", "n_features": 1024, "n_hidden": 128})


@pytest.fixture
def two_sweeps():
    k = results(["batchtopk", "mp"], "k", [5, 6],
                {"batchtopk": {5: [5, 5, 5], 6: [6, 6, 6]}, "mp": {5: [5, 5, 5], 6: [6, 6, 6]}},
                lambda kind, v, s: (0.5 if kind == "mp" else 0.8) + 0.01 * v + 0.001 * s)
    penalty = results(["relu"], "l1_coefficient", [1.0, 3.0, 10.0],
                      {"relu": {1.0: [20, 21, 22], 3.0: [6.2, 6.0, 5.9], 10.0: [4.6, 4.9, 5.3]}},
                      lambda kind, v, s: 0.6 + 0.001 * s)
    return k, penalty


def test_rows_read_the_k_kinds_at_k_and_the_penalty_kinds_at_the_nearest_median_l0(two_sweeps):
    """Targets default to the k axis (5, 6); relu is read at λ = 10 for 5 (median L0 4.9)
    and λ = 3 for 6 (median 6.0); each cell is the median, lowest and highest seed; the
    best median of a metric per target is bold in the markdown."""
    rows = benchmark_rows(two_sweeps)
    assert [(r["kind"], r["target"], r["value"]) for r in rows] == [
        ("relu", 5, 10.0), ("relu", 6, 3.0), ("batchtopk", 5, 5), ("batchtopk", 6, 6),
        ("mp", 5, 5), ("mp", 6, 6)]
    relu5 = rows[0]
    assert relu5["l0"] == (4.9, 4.6, 5.3) and relu5["seeds"] == 3
    assert relu5["firing_f1"] == pytest.approx((0.601, 0.6, 0.602))
    assert winners(rows)[6.0] == {m: "batchtopk" for m, _ in METRICS}
    table = benchmark_markdown(rows)
    assert "| relu | 5 | λ = 10 | 4.90 (4.60–5.30) |" in table
    assert table.count("**") == 2 * 2 * len(METRICS)  # one winner per metric and target


def test_published_table_and_its_winners():
    """The SAELens table as published: Matryoshka wins F1, MCC and uniqueness at L0 = 25,
    MatchPursuit the explained variance; at L0 = 20 BatchTopK wins the MCC."""
    assert PUBLISHED[25]["matryoshka"]["firing_f1"] == (0.8793, 0.0021)
    assert published_winners()[25] == {"firing_f1": "matryoshka", "decoder_mcc": "matryoshka",
                                       "uniqueness": "matryoshka", "explained_variance": "mp"}
    assert published_winners()[20]["decoder_mcc"] == "batchtopk"


def test_figure_draws_every_kind_and_refuses_two_axes(two_sweeps):
    k, penalty = two_sweeps
    fig = PLOTS["benchmark_table"](k, also=None)
    assert isinstance(fig, Figure) and len(fig.axes) == 4 and all(ax.has_data() for ax in fig.axes)
    wide = k.expand_dims(width=[64, 128])
    with pytest.raises(ValueError, match="width"):
        benchmark_rows([wide])


@pytest.mark.parametrize("name, kinds, l1", [
    ("sae_synthbench_16k.toml", ("batchtopk", "matryoshka"), False),
    ("sae_synthbench_16k_mp.toml", ("mp",), False),
    ("sae_synthbench_16k_penalty.toml", ("relu", "jumprelu"), True)])
def test_16k_sweeps_are_the_published_protocol_and_fit_an_80_gb_gpu(name, kinds, l1):
    """SAELens's protocol: the 16k world (16,384 features in 768 dims), width 4,096, 200M
    samples = 195,312 steps of batch 1,024, lr 3e-4, seeds 0-4, L0 20 and 25 (k, or a
    penalty's grid); one compiled step fits 80 GB (`limits.check_sizes`)."""
    config = tm.parse_config(tomllib.loads((SWEEPS / name).read_text()), name)
    spec = config.spec
    assert (spec.sae.world.n_features, spec.sae.world.n_hidden, spec.sae.width) == (16384, 768, 4096)
    assert (spec.train.steps, spec.train.batch_size) == (200_000_000 // 1024, 1024)
    assert config.train["learning_rate"] == 3e-4
    axes = dict(config.axes)
    assert axes["kind"] == kinds and axes["seed"] == (0, 1, 2, 3, 4)
    assert ("l1_coefficient" in axes) == l1 and (l1 or axes["k"] == (20, 25))
    trainer = trainer_of(config)
    check_sizes(trainer, trainer.resolve(config), (80 * 10**9, "an 80 GB GPU"))
