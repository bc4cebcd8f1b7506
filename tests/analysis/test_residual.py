"""`toymodels analyze` of residual-MLP results (toymodels/analysis/residual.py) and the
batched baselines it uses (toymodels/analysis/computation.py `naive_baseline`,
`linear_baseline`): against the naive closed form written here from its definition, the
float64 theory (`toymodels.theory.computation`, itself tested against Monte Carlo), and,
slow, a trained control where only the published labels beat the naive baseline."""

import functools
import tomllib

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels.analysis import residual
from toymodels.config import to_toml
from toymodels.analysis import analyze
from toymodels.analysis import computation as c
from toymodels.theory import computation as theory

F, D_EMBED, D_MLP = 6, 8, 3
MIXING = [0.0, 0.5, 1.0]
SEEDS = [0, 1]
CONFIG = f"""
name = "hand"
[residual]
n_features = {F}
d_embed = {D_EMBED}
d_mlp = {D_MLP}
task = "{{task}}"{{readout}}
[data]
feature_probability = 0.1
[train]
steps = 10
batch_size = 8
log_every = 5
[sweep]
{{axis}} = {MIXING}
seed = {SEEDS}
"""
UAND_AXIS = [0, 1, 2]  # uand has no label mixing: its runs differ by embed_seed


def unit_columns(rng, d, n):
    W = rng.normal(size=(d, n))
    return W / np.linalg.norm(W, axis=0)


@functools.lru_cache(maxsize=None)
def hand_results(task: str) -> xr.Dataset:
    """A residual results Dataset made by hand: random W_E per run (unit-norm columns),
    random MLP weights, feature probabilities and importances that differ by feature,
    and arbitrary final losses; its config that of `CONFIG` (axes label_mixing, seed;
    uand: embed_seed, seed)."""
    rng = np.random.default_rng(0)
    uand = task == "uand"
    text = CONFIG.format(task=task, readout='\nreadout = "learned"' if uand else "",
                         axis="embed_seed" if uand else "label_mixing")
    config = tm.parse_config(tomllib.loads(text.replace(str(MIXING), str(UAND_AXIS)) if uand else text))
    shape = (len(MIXING), len(SEEDS))
    axes = ("embed_seed" if uand else "label_mixing", "seed")
    W_E = np.stack([unit_columns(rng, D_EMBED, F) for _ in range(6)]).reshape(*shape, D_EMBED, F)
    n_out = F * (F - 1) // 2 if task == "uand" else F
    density = rng.uniform(0.02, 0.3, size=(*shape, F))
    importance = rng.uniform(0.3, 1.0, size=(*shape, F))
    final = rng.uniform(0.005, 0.05, size=shape)
    variables = {
        "W_E": (axes + ("embed", "feature"), W_E),
        "W_in_0": (axes + ("neuron_0", "embed"), rng.normal(size=(*shape, D_MLP, D_EMBED))),
        "W_out_0": (axes + ("embed", "neuron_0"), rng.normal(size=(*shape, D_EMBED, D_MLP))),
        "b_in_0": (axes + ("neuron_0",), rng.normal(size=(*shape, D_MLP))),
        "b_out_0": (axes + ("embed",), rng.normal(size=(*shape, D_EMBED))),
        "final_loss": (axes, final),
        "final_loss_se": (axes, final / 100),
        "loss_per_output": (axes + ("output",), rng.uniform(0.0, 0.1, size=(*shape, n_out))),
        "density": (axes + ("feature",), density),
        "importance": (axes + ("feature",), importance),
        "label_mixing_value": (axes, np.broadcast_to(np.array(MIXING)[:, None] * (not uand), shape)),
    }
    if task == "uand":
        variables["R"] = (axes + ("output", "neuron"), rng.normal(size=(*shape, n_out, D_MLP)))
    return xr.Dataset(variables, coords={axes[0]: UAND_AXIS if uand else MIXING, "seed": SEEDS},
                      attrs={"trainer": "residual", "task": task, "name": "hand",
                             "config": to_toml(config)})


def naive_by_definition(W_E, p, importance, s, task, d_mlp):
    """The naive baseline's total loss from its definition: the d_mlp features of
    largest I p computed exactly (each costs 0), every other one left at zero, costing
    E[f(x)²] = p/6 for f = ReLU of x ~ p·Uniform[-1, 1); every output also carries the
    mixing error c (M x)_i, M = W_EᵀW_E − I, c = 1 − s (identity_relu: the residual adds
    M x, the labels s M x) or −s (relu), of variance c² Σ_k M_ik² p_k / 3 (E x² = p/3), and
    its cross term with the own-feature error vanishes as M_ii = 0 for unit-norm columns."""
    M = W_E.T @ W_E - np.eye(W_E.shape[1])
    order = sorted(range(len(p)), key=lambda j: (-importance[j] * p[j], j))
    computed = np.zeros(len(p), bool)
    computed[order[:d_mlp]] = True
    coefficient = 1 - s if task == "identity_relu" else -s
    per = np.where(computed, 0.0, p / 6) + coefficient**2 * (M**2 @ (p / 3))
    return importance @ per / len(p)


@functools.lru_cache(maxsize=None)
def analysed(task: str) -> xr.Dataset:
    return analyze(hand_results(task))


@pytest.mark.parametrize("task", ["identity_relu", "relu"])
def test_analyze_writes_the_ratio_to_the_naive_closed_form(task):
    ds, out = hand_results(task), analysed(task)
    for i, s in enumerate(MIXING):
        for j in range(len(SEEDS)):
            run = ds.isel(label_mixing=i, seed=j)
            naive = naive_by_definition(run.W_E.values, run.density.values,
                                        run.importance.values, s, task, D_MLP)
            got = out.isel(label_mixing=i, seed=j)
            np.testing.assert_allclose(got.naive_loss, naive, rtol=2e-5)
            np.testing.assert_allclose(got.loss_ratio, run.final_loss / naive, rtol=2e-5)
            np.testing.assert_allclose(got.loss_ratio_se, run.final_loss_se / naive, rtol=2e-5)
    assert out.loss_ratio.dims == ("label_mixing", "seed")
    assert out.features_served.dims == ("label_mixing", "seed", "neuron")
    assert out.loss_ratio_per_output.dims == ("label_mixing", "seed", "output")
    assert "naive" in out.loss_ratio.attrs["long_name"]
    assert all("long_name" in out[n].attrs for n, _, _ in residual.VARIABLES)


@pytest.mark.parametrize("task", ["identity_relu", "relu", "abs", "uand"])
def test_batched_baselines_equal_the_float64_theory(task):
    ds, out = hand_results(task), analysed(task)
    axis = ds.loss_per_output.dims[0]
    for i in range(len(MIXING)):
        s = float(ds.label_mixing_value.isel({axis: i, "seed": 0}))
        for j in range(len(SEEDS)):
            run = ds.isel({axis: i, "seed": j})
            args = (run.W_E.values, task, D_MLP, run.density.values,
                    None if task == "uand" else run.importance.values, s)
            naive, linear = theory.naive_loss(*args), theory.linear_loss(*args)
            got = out.isel({axis: i, "seed": j})
            np.testing.assert_allclose(got.naive_loss_per_output, naive.per_output,
                                       rtol=1e-4, atol=1e-7)
            np.testing.assert_allclose(got.linear_loss_per_output, linear.per_output,
                                       rtol=1e-3, atol=1e-6)
            np.testing.assert_allclose(got.linear_ratio, linear.total / naive.total, rtol=1e-3)
            with_bias = theory.naive_bias_loss(*args)
            np.testing.assert_allclose(got.naive_bias_loss, with_bias.total, rtol=1e-4)
            np.testing.assert_allclose(got.bias_ratio, run.final_loss / with_bias.total,
                                       rtol=1e-4)
            np.testing.assert_allclose(got.bias_ratio_se, run.final_loss_se / with_bias.total,
                                       rtol=1e-4)
            assert float(got.naive_bias_loss) <= float(got.naive_loss)
            if task != "uand":  # p >= 0.02: the means are a gain (uand: at a neuron's cost)
                assert float(got.naive_bias_loss) < float(got.naive_loss)
    if task == "uand":
        assert out.uand_n_pairs.dims == ("embed_seed", "seed", "neuron")


def test_a_run_without_biases_gets_the_naive_loss_as_naive_with_biases():
    """bias = false: no output bias gives the means, so naive_bias_loss = naive_loss."""
    ds = hand_results("abs")
    raw = tomllib.loads(ds.attrs["config"])
    raw["residual"]["bias"] = False
    out = analyze(ds.assign_attrs(config=to_toml(tm.parse_config(raw))))
    np.testing.assert_array_equal(out.naive_bias_loss, out.naive_loss)
    np.testing.assert_array_equal(out.bias_ratio, out.loss_ratio)
    biased = analysed("abs")
    assert np.all(biased.naive_bias_loss < biased.naive_loss)


def test_abs_naive_baseline_gives_an_odd_last_neuron_half_a_feature():
    """|x| = ReLU(x) + ReLU(−x): 3 neurons give feature 0 both halves (cost 0) and
    feature 1 one half (cost E ReLU(−x)² = p/6, the other p/3)."""
    p = jnp.full(3, 0.3)
    out = c.naive_baseline(jnp.eye(3), p, jnp.ones(3), 0.0, "abs", 3)
    np.testing.assert_allclose(out["per_output"], [0.0, 0.05, 0.1], rtol=1e-6)


CONTROL = """
name = "control"
[residual]
n_features = 20
d_embed = 64
d_mlp = 10
task = "identity_relu"
[data]
feature_probability = 0.05
[train]
steps = 500
batch_size = 512
log_every = 100
learning_rate = 0.003
eval_samples = 32768
[sweep]
label_mixing = [0.0, 1.0]
seed = [0]
"""


@pytest.mark.slow
def test_only_the_published_labels_beat_the_naive_baseline(tmp_path):
    """Bhagat et al. 2025's control, small: with the published labels (s = 0) a trained
    residual MLP's loss relative to the naive baseline is below its clean-label ratio
    (s = 1), and with clean labels it does not beat the naive baseline (ratio not below
    1 − 4 SE): no computation in superposition at this setting."""
    out = tm.run_sweep(tm.parse_config(tomllib.loads(CONTROL)), tmp_path / "control", quiet=True)
    ds = analyze(tm.load(out))
    ratio, se = ds.loss_ratio.isel(seed=0), ds.loss_ratio_se.isel(seed=0)
    published, clean = float(ratio.sel(label_mixing=0.0)), float(ratio.sel(label_mixing=1.0))
    assert published < min(1.0, clean) - 4 * float(se.max())
    assert clean >= 1 - 4 * float(se.sel(label_mixing=1.0))
    assert float(ds.linear_ratio.sel(label_mixing=0.0).isel(seed=0)) < 1 < float(
        ds.linear_ratio.sel(label_mixing=1.0).isel(seed=0))


@pytest.mark.slow
def test_analyze_combines_groups_of_different_d_mlp(tmp_path):
    """A sweep over d_mlp (static: groups with 2 and 3 neurons) is analysed group by group
    and combined: the per-neuron variables padded with NaN beyond a group's own neurons,
    each group's naive loss that of its own d_mlp by definition."""
    text = CONFIG.format(task="relu", readout="", axis="label_mixing").replace(
        f"label_mixing = {MIXING}", "d_mlp = [2, 3]")
    out = analyze(tm.load(tm.run_sweep(tm.parse_config(tomllib.loads(text)), tmp_path / "r",
                                       quiet=True)))
    assert out.features_served.dims == ("d_mlp", "seed", "neuron")
    assert out.sizes["neuron"] == 3
    assert np.isnan(out.features_served.sel(d_mlp=2).isel(neuron=2)).all()
    assert np.isfinite(out.features_served.sel(d_mlp=3)).all()
    for k in (2, 3):
        run = out.sel(d_mlp=k).isel(seed=0)
        naive = naive_by_definition(run.W_E.values, run.density.values,
                                    run.importance.values, 0.0, "relu", k)
        np.testing.assert_allclose(run.naive_loss, naive, rtol=2e-5)
