"""The model zoo: small trained models that illustrate the paper, shipped with the package.

Each entry is a named, frozen recipe: a one-line description of what it illustrates, a
sweep config in the project's schema (with a `seed` axis for best-of-N restarts, as the
paper keeps the lowest-loss of several fits) and which run to keep: the lowest
`final_loss` over seeds, optionally at one coordinate of the other axes. `build` trains
the recipes with `run_sweep` and writes `toymodels/zoo_data/<name>.npz` (float32
parameters, the resolved config as TOML, the metrics); `load` reads them back as a
`ZooModel`, which can be called on inputs.

Example:
  >>> from toymodels import zoo
  >>> model = zoo.load("intro_pentagon")
  >>> model.W.shape, model(np.ones(5)).shape, model(np.ones((3, 5))).shape
  ((2, 5), (5,), (3, 5))

Entries that share a sweep config (the three intro models; the basic series with its
dropout and L1 twins) are trained once by `build`; a run depends only on its config, so
building one entry alone gives the same weights, on one machine bit-identical with any
number of devices. (The shipped files were built by `toymodels zoo build` with 2 CPU
devices on an AVX-512 Intel Xeon.) Built on another CPU or a GPU, where XLA emits other
code, they agree to a measured tolerance instead: rebuilt with code for another
instruction set, weights moved by at most 2.2e-6 (3.4e-4 for `l1_sparse`, whose L1 kink
amplifies rounding), losses by 2.2e-6 of their value, and no label or kept seed changed
(tests/portable.py holds the tolerances the tests use).

Settings follow REFERENCE.md sections 1.6-1.14 and 9. Deviations from the paper's recipe
are stated in the descriptions: `tetrahedron` uses binary features (with Uniform[0, 1]
values a digon plus two dedicated features has the lower loss, so no tetrahedron forms)
and a higher, cosine-decayed learning rate; some entries train fewer than 10,000 steps
where that converges.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from toymodels.config import SweepConfig, parse_toy
from toymodels.errors import UserError, unknown
from toymodels.models import get_model

DATA_PACKAGE = "zoo_data"  # folder inside the toymodels package that holds the .npz files


@dataclasses.dataclass(frozen=True)
class Entry:
    """One recipe of the zoo.

    Attributes:
      description: one line, what the model illustrates (`toymodels zoo list`).
      sweep: the sweep config in the project's schema, frozen (read-only mappings and
        tuples); `config(name)` parses it into a SweepConfig.
      at: ((axis, value), ...) the coordinate of the non-seed axes to keep; empty when
        the seed is the only axis of more than one value.
    """

    description: str
    sweep: Mapping
    at: tuple[tuple[str, float], ...] = ()


def _freeze(value):
    """Nested dicts and lists -> read-only mappings and tuples (the registry is constant)."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value):
    """The inverse of `_freeze`: plain dicts and lists, as `parse_toy` expects."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _recipe(name: str, model: dict, data: dict, sweep: dict, **train) -> Mapping:
    """A frozen raw sweep: the notebook recipe (AdamW 1e-3, wd 0.01, batch 1024, 10k steps)
    unless `train` overrides it."""
    return _freeze({"name": f"zoo_{name}", "seed": 0, "model": model, "data": data,
                    "train": {"steps": 10_000, "log_every": 100, **train}, "sweep": sweep})


def _relu_output(n_features: int, n_hidden: int) -> dict:
    return {"kind": "relu_output", "n_features": n_features, "n_hidden": n_hidden}


_INTRO = _recipe(  # REFERENCE 1.6 and 9: 5 features of importance 0.9^i in 2 dimensions
    "intro", _relu_output(5, 2), {"importance_decay": 0.9},
    {"feature_probability": [1.0, 0.25, 0.05], "seed": list(range(8))})
_BASIC = _recipe(  # REFERENCE 1.7, 1.14, 2 and 9: 20 features (importance 0.7^i) in 5 dims;
    # the dropout and L1 twins share the sweep (and its seeds): one compiled call in all
    "basic", _relu_output(20, 5), {"importance_decay": 0.7},
    {"feature_probability": [1.0, 0.1, 0.001], "dropout": [0.0, 0.3], "l1_hidden": [0.0, 0.1],
     "seed": [0, 1]})
_OFF = (("dropout", 0.0), ("l1_hidden", 0.0))


def _pairs(correlation: str) -> Mapping:
    return _recipe(f"{correlation}_pairs", _relu_output(4, 2),
                   {"correlation": correlation, "set_size": 2, "feature_probability": 0.05},
                   {"seed": list(range(8))}, steps=5000)


REGISTRY: Mapping[str, Entry] = types.MappingProxyType({
    "intro_dense": Entry(
        "5 features (importance 0.9^i) in 2 dims, dense: the top two get orthogonal "
        "dimensions, the other three are dropped (PCA-like)",
        _INTRO, (("feature_probability", 1.0),)),
    "intro_digons": Entry(
        "5 features in 2 dims at density 0.25: the top four form two antipodal pairs "
        "(D = 1/2), the least important is dropped",
        _INTRO, (("feature_probability", 0.25),)),
    "intro_pentagon": Entry(
        "5 features in 2 dims at density 0.05: all five on a pentagon (D = 2/5) with "
        "negative biases (the paper's first figure)",
        _INTRO, (("feature_probability", 0.05),)),
    "basic_p1": Entry(
        "20 features (importance 0.7^i) in 5 dims, dense: the top five, orthogonal; "
        "no superposition",
        _BASIC, (("feature_probability", 1.0), *_OFF)),
    "basic_p0.1": Entry(
        "20 features in 5 dims at density 0.1: about ten represented, most in "
        "antipodal pairs",
        _BASIC, (("feature_probability", 0.1), *_OFF)),
    "basic_p0.001": Entry(
        "20 features in 5 dims at density 0.001: about twelve represented, all in "
        "superposition, with negative biases",
        _BASIC, (("feature_probability", 0.001), *_OFF)),
    "basic_linear": Entry(
        "the linear model on basic_p0.1's data: only the top five features, "
        "orthogonal; no superposition however sparse",
        _recipe("basic_linear", {"kind": "linear", "n_features": 20, "n_hidden": 5},
                {"importance_decay": 0.7, "feature_probability": 0.1}, {"seed": [0, 1]},
                steps=3000)),
    "dropout": Entry(
        "basic_p0.1 trained with dropout 0.3 on h: fewer features represented than "
        "without (Pona 2023)",
        _BASIC, (("feature_probability", 0.1), ("dropout", 0.3), ("l1_hidden", 0.0))),
    "l1_sparse": Entry(
        "basic_p0.1 with an L1 penalty 0.1 on h: only the top five features, each "
        "dedicated; superposition removed at a higher loss",
        _BASIC, (("feature_probability", 0.1), ("dropout", 0.0), ("l1_hidden", 0.1))),
    "tetrahedron": Entry(
        "4 binary features (value 1 when on) in 3 dims at density 0.3: a tetrahedron "
        "(D = 3/4); with uniform values a digon + two dedicated features win instead",
        _recipe("tetrahedron", _relu_output(4, 3),
                {"magnitude": "constant", "feature_probability": 0.3},
                {"seed": list(range(16))}, steps=5000, learning_rate=0.03, schedule="cosine")),
    "square_antiprism": Entry(
        "8 equally important features in 3 dims at density 0.05: a square antiprism "
        "(D = 3/8)",
        _recipe("square_antiprism", _relu_output(8, 3), {"feature_probability": 0.05},
                {"seed": [0, 1, 2, 3]}, steps=5000)),
    "correlated_pairs": Entry(
        "two sets of two correlated features in 2 dims (set density 0.05): members of a "
        "set orthogonal, each antipodal to a feature of the other set",
        _pairs("correlated")),
    "anticorrelated_pairs": Entry(
        "two sets of two anticorrelated features in 2 dims (set density 0.05): members "
        "of a set antipodal, the sets orthogonal",
        _pairs("anticorrelated")),
    "privileged_basis": Entry(
        "ReLU hidden layer, 10 features (importance 0.75^i) in 5 neurons at density 0.7: "
        "the top five each on its own neuron (monosemantic)",
        _recipe("privileged_basis", {"kind": "relu_hidden", "n_features": 10, "n_hidden": 5},
                {"importance_decay": 0.75, "feature_probability": 0.7},
                {"seed": [0, 1, 2, 3]})),
    "abs_circuit": Entry(
        "|x| of 3 dense features in 6 neurons: each feature gets a positive-side and a "
        "negative-side neuron, |x| = ReLU(x) + ReLU(-x)",
        _recipe("abs_circuit", {"kind": "abs_computation", "n_features": 3, "n_hidden": 6},
                {}, {"seed": [0, 1]}, steps=5000)),
})


def names() -> list[str]:
    """The zoo's model names, in registry order.

    Example:
      >>> "intro_pentagon" in names()
      True
    """
    return list(REGISTRY)


def entry(name: str) -> Entry:
    """The registry entry of `name`.

    Raises:
      UserError: unknown name; the message lists the valid ones.
    """
    if name not in REGISTRY:
        raise UserError(f"zoo model {name!r}: {unknown(name, REGISTRY, 'zoo model')}")
    return REGISTRY[name]


def describe(name: str) -> str:
    """One line on what the model `name` illustrates."""
    return entry(name).description


def config(name: str) -> SweepConfig:
    """The sweep config that trains `name` from scratch (`toymodels.run_sweep(config, dir)`).

    Example:
      >>> config("intro_pentagon").spec.model.n_hidden
      2
    """
    return parse_toy(_thaw(entry(name).sweep), source=f"zoo:{name}")


# ---- the trained models


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """A trained model of the zoo.

    Attributes:
      name: its zoo name.
      params: float32 arrays, e.g. {"W": [H, F], "b": [F]} ({"W1", "W2", "b"} for the
        abs_computation model).
      config: the sweep config that trained it (`zoo.config(name)`).
      metrics: computed from the weights at build time: final_loss, seed (the kept run),
        seed_losses ([S] final loss of every seed at the kept coordinate), feature_norm,
        feature_dimensionality, superposition ([F] each, of `W`), n_represented and
        polytope ([F] labels from `toymodels.analysis.polytopes`).
      at: {axis: value} of the kept run (the seed included).
    """

    name: str
    params: Mapping[str, np.ndarray]
    config: SweepConfig
    metrics: Mapping[str, object]
    at: Mapping[str, float]

    @property
    def kind(self) -> str:
        """The model kind, a key of `toymodels.MODELS`."""
        return self.config.spec.model.kind

    @property
    def W(self) -> np.ndarray:
        """[H, F] encoder weights; column i is feature i's direction (W1 for abs)."""
        return self.params["W1"] if "W1" in self.params else self.params["W"]

    @property
    def b(self) -> np.ndarray:
        """[F] output bias."""
        return self.params["b"]

    @property
    def n_features(self) -> int:
        return self.config.spec.model.n_features

    @property
    def n_hidden(self) -> int:
        return self.config.spec.model.n_hidden

    def _run(self, x) -> tuple[jnp.ndarray, jnp.ndarray]:
        """(output, hidden) for x: [F] or [B, F]; returns [F] / [B, F] and [H] / [B, H]."""
        x = jnp.asarray(x, jnp.float32)
        if x.ndim not in (1, 2) or x.shape[-1] != self.n_features:
            raise ValueError(f"{self.name}: x must be [F] or [B, F] with F = "
                             f"{self.n_features}, got shape {tuple(x.shape)}")
        columns = x.reshape(-1, self.n_features).T  # [F, B], the models' layout
        keep = jnp.ones((self.n_hidden, columns.shape[1]), jnp.float32)
        params = {k: jnp.asarray(v) for k, v in self.params.items()}
        y, h = get_model(self.kind).forward(params, columns, keep)
        shape = x.shape[:-1]
        return y.T.reshape(*shape, self.n_features), h.T.reshape(*shape, self.n_hidden)

    def forward(self, x) -> jnp.ndarray:
        """The model's output.

        Args:
          x: [F] one input or [B, F] a batch (rows are examples).

        Returns:
          [F] or [B, F], e.g. ReLU(WᵀWx + b) for the ReLU-output model.
        """
        return self._run(x)[0]

    __call__ = forward

    def hidden(self, x) -> jnp.ndarray:
        """The hidden vector h (no dropout).

        Args:
          x: [F] or [B, F].

        Returns:
          [H] or [B, H].
        """
        return self._run(x)[1]


def _data_file(name: str):
    """The shipped file of `name` (a Traversable inside the installed package)."""
    return importlib.resources.files("toymodels").joinpath(DATA_PACKAGE, f"{name}.npz")


def load(name: str, path: str | Path | None = None) -> ZooModel:
    """The trained model `name`, from the shipped file (or `path`, e.g. a fresh build).

    Args:
      name: a name from `names()`.
      path: a .npz written by `build`; default the file inside the package.

    Returns:
      A ZooModel.

    Raises:
      UserError: unknown name, or no file (run `toymodels zoo build NAME`).
    """
    entry(name)
    source = Path(path) if path is not None else _data_file(name)
    try:
        with source.open("rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise UserError(f"zoo model {name!r}: no file {source}; "
                        f"run `toymodels zoo build {name}`") from None
    return _from_arrays(name, arrays)


def _from_arrays(name: str, arrays: dict[str, np.ndarray]) -> ZooModel:
    """A ZooModel from the flat arrays of its .npz (keys "param/...", "metric/...", ...)."""
    cfg = parse_toy(tomllib.loads(str(arrays["config"])), source=f"zoo:{name}")
    group = lambda prefix: {k.split("/", 1)[1]: v for k, v in arrays.items()
                            if k.startswith(prefix + "/")}
    params = group("param")
    metrics = {k: _plain(v) for k, v in group("metric").items()}
    at = {k: _plain(v) for k, v in group("at").items()}
    return ZooModel(name, types.MappingProxyType(params), cfg, types.MappingProxyType(metrics),
                    types.MappingProxyType(at))


def _plain(v: np.ndarray):
    """0-d arrays as Python scalars, others unchanged."""
    return v.item() if v.ndim == 0 else v


# ---- building
