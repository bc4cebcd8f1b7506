"""Static specifications: everything that fixes array shapes or the compiled program.

The defaults of the static keys live here, once: the toy schema's `Key`s
(`toymodels.config.SCHEMA`) read them from these classes.

A `Spec` is hashable and frozen, so `make_train(spec)` can close over it. What is swept
(sparsity, importance, dropout, learning rate, weight decay, ...) lives in `toymodels.hyper.Hyper`
as traced arrays instead, so one compiled program serves a whole grid.
"""

from __future__ import annotations

import dataclasses
import math

EVAL_BATCH = 4096  # samples per evaluation batch, whatever the training batch size


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Which model, and its shape.

    Attributes:
      kind: a name in `toymodels.models.MODELS` ("linear", "relu_output", ...).
      n_features: F, the input (and output) width.
      n_hidden: H, the bottleneck width.
      bias: whether the output bias `b` trains; False keeps `b` in the parameters but at
        exactly zero after every update (so datasets and analysis still see a `b`).
      norm: "none", "rms" or "layer": a normalisation of the hidden vector before the
        readout, z = W_out norm(h) + b, without affine part (`toymodels.models.NORMS`).
      norm_eps: the ε of the norm, inside the root: h / sqrt(mean h² + ε).
    """

    kind: str = "relu_output"
    n_features: int = 20
    n_hidden: int = 5
    bias: bool = True
    norm: str = "none"
    norm_eps: float = 1e-5  # torch.nn.LayerNorm's default eps


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """How long and in what batches one model trains.

    Attributes:
      steps: optimiser steps per run.
      batch_size: B, examples per step: fresh samples, or a minibatch of the finite
        training set (`DataSpec.dataset_size`; the config's "full" resolves to T), or the
        F one-hot vectors (`DataSpec.inputs` = "one_hot").
      log_every: the loss curve holds the mean loss of each block of this many steps.
      schedule: "constant" or "cosine" (cosine decay to 0 at the last step after the
        warm-up, as `optax.warmup_cosine_decay_schedule` with end value 0).
      warmup_steps: W, linear warm-up from 0 (both schedules): the update of step count c
        (the first update has c = 0) uses c / W of the peak learning rate while c < W.
      optimizer: a name in `toymodels.train.OPTIMIZERS` ("adamw", "adam", "sgd",
        "momentum"); see there for how each applies the weight decay.
      snapshot_every: keep the parameters every this many steps (and at step 0) for
        training dynamics; 0 keeps only the final ones.
      eval_samples: samples of the sampled stratum of `final_loss` (two or more active
        features; the strata of zero and one are exact, see `toymodels.evaluation`),
        rounded up to whole evaluation batches of `EVAL_BATCH`. The default 262,144 costs
        under 1% of a 10,000-step run and halves the error of 65,536.
      init: "random" (the model kind's own init, e.g. Xavier-normal W and zero b) or
        "kgon" (the regular k-gon critical point of Chen et al. 2023,
        `toymodels.models.kgon_params`, plus noise; tied W and b only), or "normal"
        (every weight N(0, 1/H), biases 0: Lecomte et al. 2023; `toymodels.train.normal_init`).
      init_k: k of the "kgon" init, 1 <= k <= F (0 with "random").
      init_noise: with "kgon", the std of the N(0, 1) noise added to every entry of W
        and b, drawn from the run's init key (0: the k-gon exactly).
    """

    steps: int = 10_000
    batch_size: int = 1024
    log_every: int = 100
    schedule: str = "constant"
    warmup_steps: int = 0
    snapshot_every: int = 0
    eval_samples: int = 262_144
    optimizer: str = "adamw"
    init: str = "random"
    init_k: int = 0
    init_noise: float = 0.0

    @property
    def n_logs(self) -> int:
        """T, the number of points on the loss curve."""
        return self.steps // self.log_every

    @property
    def n_snapshots(self) -> int:
        """Snapshots after step 0 (0 when snapshots are off)."""
        return self.steps // self.snapshot_every if self.snapshot_every else 0

    @property
    def n_eval_batches(self) -> int:
        """Batches of `EVAL_BATCH` samples in the final evaluation (at least `eval_samples`)."""
        return math.ceil(self.eval_samples / EVAL_BATCH)


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The structure of the input distribution (what fixes how it is sampled).

    Attributes:
      correlation: "independent", "correlated" (one draw switches a whole set of
        `set_size` features on or off; active members take independent values) or
        "anticorrelated" (a set is on with probability p, and then exactly one uniformly
        chosen member is non-zero). The paper's exact semantics (section "Correlated and
        Anticorrelated Features").
      set_size: features per set (consecutive features 0..k-1, k..2k-1, ...).
      magnitude: the value of an active feature: "uniform" (Uniform[0, 1), the paper's),
        "exponential" (mean 1/2, as the uniform's) or "constant" (exactly 1).
      inputs: the law of which features are on: "bernoulli" (each feature on with its
        own probability, with `correlation`), "exactly_one" (one feature per example,
        chosen uniformly among the F; Chen et al. 2023's high-sparsity limit) or
        "one_hot" (every batch is the F one-hot vectors e_1..e_F with value 1; B = F;
        Lecomte et al. 2023).
      unit_norm: every example is rescaled to ||x||_2 = 1 (zero stays zero).
      dataset_size: T, the number of fixed training examples drawn once per run
        (`toymodels.data.training_set`); 0 trains on fresh samples every step.
    """

    correlation: str = "independent"
    set_size: int = 1
    magnitude: str = "uniform"
    inputs: str = "bernoulli"
    unit_norm: bool = False
    dataset_size: int = 0


@dataclasses.dataclass(frozen=True)
class Spec:
    """The static part of a sweep: one compiled program per Spec.

    Attributes:
      model, train, data: see ModelSpec, TrainSpec, DataSpec.
      sae: a group of sparse autoencoders' own static part
        (`toymodels.sae_config.SAESpec`: kind, width, source); `model` and `data`
        are then the source's, `train` the SAEs'. None for other trainers.
      llc: an LLC pass's own static part (`toymodels.llc.LLCSpec`: loss mode, chains,
        draws, ...), whose `model`, `train` and `data` are its source sweep's. None for
        other trainers.
      residual: a residual-MLP group's own static part
        (`toymodels.residual_config.ResidualSpec`: widths, layers, task); `model` then
        holds n features and d_mlp hidden for the input sampler. None for other trainers.
      spd: a group of parameter decompositions' own static part
        (`toymodels.spd_config.SPDSpec`: source, C, identity, d_gate, mask samples), whose
        `model` is the target's shape and `train` the decomposition's steps and batch. None
        for other trainers.
    Which trainer runs a config is its `SweepConfig.trainer` (chosen by the file's table),
    never the presence of these fields.
    """

    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    data: DataSpec = DataSpec()
    sae: SAESpec | None = None  # noqa: F821 (a type of toymodels.sae_config; spec imports no trainer)
    llc: LLCSpec | None = None  # noqa: F821 (a type of toymodels.llc)
    residual: ResidualSpec | None = None  # noqa: F821 (a type of toymodels.residual_config)
    spd: SPDSpec | None = None  # noqa: F821 (a type of toymodels.spd_config)
