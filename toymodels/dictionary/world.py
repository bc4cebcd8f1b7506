"""A synthetic feature world (SynthSAEBench's generative model), built once and sampled.

`build_world(spec, seed)` turns a static `WorldSpec` (`toymodels.world_spec`) into a
`World` of arrays: each feature's firing probability, magnitude law, place in the
hierarchy, copula loadings and unit direction, and the bias. `sample_code(world, spec,
key)` draws ONE example's feature activations [F] in SAELens's order:

  1. which features fire: independently (u_i < p_i), through the Gaussian copula
     (z = factor @ eps + sqrt(diag) * eta > Phi^-1(1 - p_i)), or exactly K uniformly;
  2. each firing feature's magnitude from its mean and std (`WorldSpec.magnitude`);
  3. the hierarchy: among the firing children of each exclusive parent one, chosen
     uniformly, is kept (`exclude`); then, level by level from the roots down, a child
     whose parent is silent is silenced, or with `scale_children` multiplied by its
     parent's value / the parent's mean (`gate`). SAELens excludes at each level after
     gating it; siblings share their parent's gate, so the outcome is the same;
  4. max(0, .).

`sample_codes` vmaps it over a batch of keys; `hidden(world, codes)` is codes @ truth + b.

Conventions: `probability[i]` is the probability with which feature i is DRAWN; a child
fires only if its parent fires too, so without exclusion or correlation P(child fires) =
P(parent fires) * probability[child] (the product down its line of ancestors).
`base_probability` is the firing law's p before the hierarchy's compensation (with
`compensate`, about each feature's rate of firing).

Shapes: F features, d hidden dims, r copula factors, B examples.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from scipy import special

from toymodels import threefry
from toymodels.world_spec import FIRING_LAWS, MAGNITUDES, VALUE_LAWS, WorldSpec

# one numpy stream per random part of a world: default_rng([tag, seed])
DIRECTIONS, BIAS, FACTOR, BRANCHING, EXCLUSIVE, MEAN, STD = range(7)
MAX_LOADING = 0.99  # a copula row's squared norm is capped here (SAELens: diag >= 0.01)


@struct.dataclass
class World:
    """A built world: arrays only (a pytree), shared by every run of a sweep.

    Attributes:
      probability: [F] the probability each feature is drawn with (a child's: given its
        parent fires); `exactly_k`: K / F.
      base_probability: [F] the firing law's p, before the hierarchy's compensation.
      threshold: [F] Phi^-1(1 - probability), the copula's firing threshold.
      mean, std: [F] each feature's magnitude mean and std (the magnitude law's numbers).
      parent: [F] int32, the parent feature, -1 for a root or a feature outside the forest.
      level: [F] int32, the depth below its root (0 for roots and free features).
      group: [F] int32, the exclusive group (its parent's index) or -1.
      siblings: [G, S] int32 the children of each of the G exclusive parents, padded with
        -1 (S the most children of a parent).
      slot: [F] int32 each exclusive child's place g * S + s in `siblings`, or -1.
      factor: [F, r] the copula's loadings (r = 0: independent firing).
      diag_sqrt: [F] sqrt(1 - |factor_i|^2), each feature's own Gaussian's scale.
      truth: [F, d] unit rows: feature i's direction.
      bias: [d] the world's bias.
    """

    probability: jax.Array
    base_probability: jax.Array
    threshold: jax.Array
    mean: jax.Array
    std: jax.Array
    parent: jax.Array
    level: jax.Array
    group: jax.Array
    siblings: jax.Array
    slot: jax.Array
    factor: jax.Array
    diag_sqrt: jax.Array
    truth: jax.Array
    bias: jax.Array


# ---- firing laws and per-feature values


def zipf_probabilities(n: int, exponent: float, p_max: float, p_min: float) -> np.ndarray:
    """[n] SAELens's Zipf law: rank^-exponent rescaled linearly onto [p_min, p_max]
    (p_1 = p_max, p_n = p_min; one feature: p_max)."""
    if n == 1:
        return np.array([p_max], np.float64)
    raw = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return p_min + (p_max - p_min) * (raw - raw[-1]) / (raw[0] - raw[-1])


def firing_probabilities(spec: WorldSpec) -> np.ndarray:
    """[F] float64 the firing law's p_i (`WorldSpec.firing`)."""
    F = spec.n_features
    laws = {"zipf": lambda: zipf_probabilities(F, spec.zipf_exponent, spec.zipf_max, spec.zipf_min),
            "constant": lambda: np.full(F, spec.probability),
            "list": lambda: np.asarray(spec.probabilities, np.float64),
            "exactly_k": lambda: np.full(F, spec.active / F)}
    if spec.firing not in laws:
        raise ValueError(f"WorldSpec.firing must be one of {', '.join(FIRING_LAWS)}, got {spec.firing!r}")
    return laws[spec.firing]()


def stream(seed: int, tag: int) -> np.random.Generator:
    """The numpy generator of one random part (`tag`) of the world of `seed`: the same on
    every platform, independent of the others."""
    return np.random.default_rng([tag, seed])


def feature_values(law: str, numbers: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """[n] float64 per-feature values of a `VALUE_LAWS` law; "folded_normal" draws from `rng`."""
    if law == "constant":
        return np.full(n, numbers[0], np.float64)
    if law == "linear":
        return np.linspace(numbers[0], numbers[1], n) if n > 1 else np.array([numbers[0]])
    if law == "list":
        return np.asarray(numbers, np.float64)
    if law == "folded_normal":
        return np.abs(numbers[0] + numbers[1] * rng.standard_normal(n))
    raise ValueError(f"a per-feature law must be one of {', '.join(VALUE_LAWS)}, got {law!r}")


# ---- the hierarchy


def forest(spec: WorldSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(parent [F], level [F]) int32 of SAELens's breadth-first forest: roots 0..R-1, then
    each level's children in order, `branching` children per parent (drawn in lo..hi
    from `rng`, one per parent in order), until the features run out."""
    F = spec.n_features
    parent, level = np.full(F, -1, np.int32), np.zeros(F, np.int32)
    if not spec.hierarchical:
        return parent, level
    lo, hi = spec.branching
    draws = rng.integers(lo, hi + 1, size=F)  # at most F parents
    nodes, nxt, drawn = list(range(min(spec.roots, F))), min(spec.roots, F), 0
    for depth in range(1, spec.depth + 1):
        children = []
        for p in nodes:
            b = min(int(draws[drawn]), F - nxt)
            drawn += 1
            parent[nxt:nxt + b], level[nxt:nxt + b] = p, depth
            children.extend(range(nxt, nxt + b))
            nxt += b
        nodes = children
    return parent, level


def exclusive_groups(spec: WorldSpec, parent: np.ndarray, level: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """[F] int32 each feature's exclusive group (its parent) or -1: floor(exclusive * E)
    of the E eligible parents (at least 2 children, depth in exclusive_min_depth ..
    exclusive_max_depth), chosen uniformly from `rng`."""
    F = spec.n_features
    n_children = np.bincount(parent[parent >= 0], minlength=F)
    top = spec.exclusive_max_depth if spec.exclusive_max_depth >= 0 else spec.depth
    eligible = np.flatnonzero((n_children >= 2) & (level >= spec.exclusive_min_depth) & (level <= top))
    n = int(len(eligible) * spec.exclusive)
    chosen = np.zeros(F, bool)
    if n:
        order = rng.permutation(len(eligible))
        chosen[eligible[order[:n]]] = True
    return np.where((parent >= 0) & chosen[np.maximum(parent, 0)], parent, -1).astype(np.int32)


def sibling_table(group: np.ndarray) -> dict[str, jax.Array]:
    """{"siblings": [G, S], "slot": [F]} int32 of the exclusive groups `group` [F]
    (`World`'s layout: group g's children in order, padded with -1)."""
    parents = np.unique(group[group >= 0])
    sizes = np.bincount(group[group >= 0], minlength=len(group))[parents]
    S = int(sizes.max()) if len(parents) else 0
    siblings, slot = np.full((len(parents), S), -1, np.int32), np.full(len(group), -1, np.int32)
    for g, p in enumerate(parents):
        children = np.flatnonzero(group == p)
        siblings[g, :len(children)] = children
        slot[children] = g * S + np.arange(len(children))
    return {"siblings": jnp.asarray(siblings), "slot": jnp.asarray(slot)}


def compensated(p: np.ndarray, parent: np.ndarray, group: np.ndarray) -> np.ndarray:
    """[F] SAELens's compensation: a child's p divided by its parent's law p, and an
    exclusive child's times 1 + (the sum of its siblings' p) / its parent's p; at most 1."""
    has = parent >= 0
    up = np.where(has, p[np.maximum(parent, 0)], 1.0)
    siblings = np.bincount(np.maximum(group, 0), weights=np.where(group >= 0, p, 0.0), minlength=len(p))
    others = np.where(group >= 0, siblings[np.maximum(group, 0)] - p, 0.0)
    return np.minimum(p / up * (1.0 + others / up), 1.0)


# ---- the copula and the dictionary


def copula_factor(spec: WorldSpec, rng: np.random.Generator) -> np.ndarray:
    """[F, r] float64 loadings: `rank` columns of N(0, scale^2) (a row whose squared norm
    passes `MAX_LOADING` rescaled to it, as SAELens), then one column per pair (i, j, rho):
    sqrt|rho| at i and sign(rho) sqrt|rho| at j, whose product is the latent correlation rho
    (a low-rank row is capped to what the pairs leave of `MAX_LOADING`)."""
    F = spec.n_features
    pairs = np.zeros((F, len(spec.correlations)))
    for c, (i, j, rho) in enumerate(spec.correlations):
        pairs[i, c], pairs[j, c] = math.sqrt(abs(rho)), math.copysign(math.sqrt(abs(rho)), rho)
    room = np.maximum(MAX_LOADING - (pairs ** 2).sum(1, keepdims=True), 0.0)  # left for the low rank
    low = spec.correlation_scale * rng.standard_normal((F, spec.rank))
    sq = (low ** 2).sum(1, keepdims=True)
    low = np.where(sq > room, low * np.sqrt(room / np.maximum(sq, 1e-30)), low)
    return np.concatenate([low, pairs], axis=1)


def orthogonalise(directions: jax.Array, steps: int, lr: float) -> jax.Array:
    """[F, d] SAELens's orthogonalisation: `steps` Adam steps (learning rate `lr`) on
    sum_{i != j} (t_i . t_j)^2 + F sum_i (|t_i|^2 - 1)^2, then unit rows. The off-diagonal
    sum is |T^T T|_F^2 - sum_i |t_i|^4, so no [F, F] matrix is formed."""
    F = directions.shape[0]

    def loss(t):
        sq = jnp.sum(t * t, axis=1)
        gram = jnp.matmul(t.T, t, precision=jax.lax.Precision.HIGHEST)
        return jnp.sum(gram ** 2) - jnp.sum(sq ** 2) + F * jnp.sum((sq - 1.0) ** 2)

    tx = optax.adam(lr)

    def step(carry, _):
        t, state = carry
        updates, state = tx.update(jax.grad(loss)(t), state, t)
        return (optax.apply_updates(t, updates), state), None

    (t, _), _ = jax.lax.scan(step, (directions, tx.init(directions)), None, length=steps)
    return t / jnp.maximum(jnp.linalg.norm(t, axis=1, keepdims=True), 1e-12)


def dictionary(spec: WorldSpec, rng: np.random.Generator) -> jax.Array:
    """[F, d] the features' unit directions: orthonormal (QR of a Gaussian, `orthogonal`)
    or random unit rows, then `ortho_steps` of `orthogonalise`."""
    F, d = spec.n_features, spec.n_hidden
    gauss = rng.standard_normal((F, d))
    if spec.orthogonal:
        q, r = np.linalg.qr(gauss.T)  # [d, F] orthonormal columns
        return jnp.asarray((q * np.sign(np.diag(r))[None, :]).T, jnp.float32)
    rows = jnp.asarray(gauss / np.linalg.norm(gauss, axis=1, keepdims=True), jnp.float32)
    if not spec.ortho_steps:
        return rows
    return jax.jit(orthogonalise, static_argnums=(1, 2))(rows, spec.ortho_steps, spec.ortho_lr)


def build_world(spec: WorldSpec, seed: int) -> World:
    """The world of `spec` drawn from `seed` (each random part from its own numpy stream,
    `stream(seed, tag)`): the same seed gives the same world, bit for bit, on every
    platform (but for the orthogonalisation's float32 steps, which run in JAX)."""
    F, d = spec.n_features, spec.n_hidden
    base = firing_probabilities(spec)
    parent, level = forest(spec, stream(seed, BRANCHING))
    group = exclusive_groups(spec, parent, level, stream(seed, EXCLUSIVE))
    p = np.float32(compensated(base, parent, group) if spec.compensate else base)
    factor = copula_factor(spec, stream(seed, FACTOR))
    gauss = stream(seed, BIAS).standard_normal(d)
    bias = spec.bias * gauss / np.linalg.norm(gauss)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    return World(
        probability=f32(p), base_probability=f32(base),
        threshold=f32(special.ndtri(1.0 - p.astype(np.float64))),
        mean=f32(feature_values(spec.mean_law, spec.mean, F, stream(seed, MEAN))),
        std=f32(feature_values(spec.std_law, spec.std, F, stream(seed, STD))),
        parent=jnp.asarray(parent), level=jnp.asarray(level), group=jnp.asarray(group),
        **sibling_table(group),
        factor=f32(factor), diag_sqrt=f32(np.sqrt(np.maximum(1.0 - (factor ** 2).sum(1), 0.0))),
        truth=dictionary(spec, stream(seed, DIRECTIONS)), bias=f32(bias))


# ---- sampling: one example, vmapped once


def normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """float32 N(0, 1) of `shape`: sqrt 2 erfinv(2u - 1) of the midpoints u of fast
    uniforms (`toymodels.threefry`, never 0 or 1)."""
    u = threefry.uniform(key, shape) + np.float32(2.0 ** -24)
    return np.float32(math.sqrt(2.0)) * jax.scipy.special.erfinv(2.0 * u - 1.0)


def firing(world: World, spec: WorldSpec, key: jax.Array) -> jax.Array:
    """[F] bool which features are drawn for one example (step 1)."""
    F = spec.n_features
    if spec.firing == "exactly_k":
        _, on = jax.lax.top_k(threefry.uniform(key, (F,)), spec.active)
        return jnp.zeros(F, bool).at[on].set(True)
    if spec.correlated:
        k_eps, k_eta = jax.random.split(key)
        eps = normal(k_eps, (spec.n_factors,))
        z = jnp.matmul(world.factor, eps, precision=jax.lax.Precision.HIGHEST)
        return z + world.diag_sqrt * normal(k_eta, (F,)) > world.threshold
    return threefry.uniform(key, (F,)) < world.probability


def magnitudes(world: World, spec: WorldSpec, key: jax.Array) -> jax.Array:
    """[F] each feature's value were it to fire (step 2; `WorldSpec.magnitude`)."""
    F = spec.n_features
    if spec.magnitude == "uniform":
        u = 2.0 * threefry.uniform(key, (F,)) - 1.0
        return jnp.maximum(world.mean + np.float32(math.sqrt(3.0)) * world.std * u, 0.0)
    z = normal(key, (F,))
    laws = {"rectified_normal": lambda: jnp.maximum(world.mean + world.std * z, 0.0),
            "folded_normal": lambda: jnp.abs(world.mean + world.std * z),
            "half_normal": lambda: jnp.abs(world.std * z)}
    if spec.magnitude not in laws:
        raise ValueError(f"WorldSpec.magnitude must be one of {', '.join(MAGNITUDES)}, got {spec.magnitude!r}")
    return laws[spec.magnitude]()


def exclude(world: World, codes: jax.Array, key: jax.Array) -> jax.Array:
    """[F] one example's codes with, in each exclusive group, every firing child but one
    (uniformly chosen: the highest of a uniform score each) silenced. Done once, before
    the gating: siblings share their parent's gate, so which of them fire when it comes
    to their level is decided here already, as SAELens decides it there."""
    G, S = world.siblings.shape
    if G == 0:
        return codes
    member = world.siblings >= 0
    active = member & (codes[jnp.maximum(world.siblings, 0)] > 0)
    score = jnp.where(active, threefry.uniform(key, (G, S)), -1.0)
    winner = jnp.argmax(score, axis=1)
    loses = (active & (jnp.arange(S)[None, :] != winner[:, None])).reshape(-1)
    return jnp.where((world.slot >= 0) & loses[jnp.maximum(world.slot, 0)], 0.0, codes)


def gate(world: World, spec: WorldSpec, codes: jax.Array) -> jax.Array:
    """[F] one example's codes with each level's children gated by their parents, from
    the roots down: silenced under a silent parent, else kept (or, `scale_children`,
    multiplied by the parent's value / the parent's mean)."""
    up = jnp.maximum(world.parent, 0)
    for depth in range(1, spec.depth + 1):
        above = codes[up]
        factor = (jnp.where(above > 0, above / jnp.maximum(world.mean[up], 1e-30), 0.0) if spec.scale_children
                  else (above > 0).astype(codes.dtype))
        codes = jnp.where(world.level == depth, codes * factor, codes)
    return codes


def sample_code(world: World, spec: WorldSpec, key: jax.Array) -> jax.Array:
    """[F] float32 one example's feature activations (the module docstring's steps)."""
    k_fire, k_size, k_pick = jax.random.split(key, 3)
    codes = jnp.where(firing(world, spec, k_fire), magnitudes(world, spec, k_size), 0.0)
    if spec.hierarchical:
        codes = gate(world, spec, exclude(world, codes, k_pick))
    return jnp.maximum(codes, 0.0)


def sample_codes(world: World, spec: WorldSpec, key: jax.Array, batch: int) -> jax.Array:
    """[batch, F] float32 feature activations of `batch` examples, example b from
    `fold_in(key, b)`."""
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(batch))
    return jax.vmap(sample_code, in_axes=(None, None, 0))(world, spec, keys)


def hidden(world: World, codes: jax.Array) -> jax.Array:
    """[B, d] the activations codes @ truth + bias of codes [B, F]."""
    return jnp.matmul(codes, world.truth, precision=jax.lax.Precision.HIGHEST) + world.bias[None, :]


# ---- a world in a results Dataset: its arrays once, without run axes

VARIABLES = {  # World field -> (Dataset variable, dims); truth is stored [hidden, feature]
    "probability": ("density", ("feature",)), "base_probability": ("world_base_density", ("feature",)),
    "threshold": ("world_threshold", ("feature",)), "mean": ("world_mean", ("feature",)),
    "std": ("world_std", ("feature",)), "parent": ("parent", ("feature",)),
    "level": ("world_level", ("feature",)), "group": ("world_group", ("feature",)),
    "factor": ("world_factor", ("feature", "factor")), "diag_sqrt": ("world_diag_sqrt", ("feature",)),
    "truth": ("truth", ("hidden", "feature")), "bias": ("world_bias", ("hidden",)),
}
DESCRIPTIONS = {
    "density": "each feature's probability of being drawn (a child's: given its parent fires)",
    "parent": "each feature's parent feature in the world's hierarchy, -1 for a root or a free feature",
    "truth": "the world's feature directions [hidden, feature] (unit columns)",
}


def world_variables(world: World) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """{variable: (dims, array)} of a world for a results Dataset (`VARIABLES`; the
    exclusive groups' table is rebuilt from `world_group`)."""
    out = {}
    for field, (name, dims) in VARIABLES.items():
        value = np.asarray(getattr(world, field))
        out[name] = (dims, value.T if field == "truth" else value)
    return out


def world_from_variables(get) -> World:
    """The World whose `world_variables` `get(name) -> array` reads back, bit for bit."""
    fields = {f: np.asarray(get(name)) for f, (name, _) in VARIABLES.items()}
    fields["truth"] = fields["truth"].T
    return World(**{f: jnp.asarray(v) for f, v in fields.items()},
                 **sibling_table(fields["group"].astype(np.int32)))


def energy(world: World, spec: WorldSpec, key: jax.Array, batch: int = 4096) -> float:
    """E|h|^2 of the world's activations (a Monte Carlo mean over `batch` examples): the
    loss of an SAE whose parameters are all zero."""
    h = hidden(world, jax.jit(sample_codes, static_argnums=(1, 3))(world, spec, key, batch))
    return float(jnp.mean(jnp.sum(h * h, axis=1)))


__all__ = ["World", "WorldSpec", "build_world", "sample_code", "sample_codes", "hidden",
           "zipf_probabilities", "firing_probabilities", "world_variables",
           "world_from_variables", "energy"]
