"""Static specifications: everything that fixes array shapes or the compiled program.

A `Spec` is hashable and frozen, so `make_train(spec)` can close over it. What is swept
(sparsity, importance, dropout, learning rate, weight decay) lives in `toymodels.hyper.Hyper`
as traced arrays instead, so one compiled program serves a whole grid.
"""

from __future__ import annotations

import dataclasses
import math



@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Which model, and its shape.

    Attributes:
      kind: a name in `toymodels.models.MODELS` ("linear", "relu_output", ...).
      n_features: F, the input (and output) width.
      n_hidden: H, the bottleneck width.
    """

    kind: str = "relu_output"
    n_features: int = 20
    n_hidden: int = 5


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """How long and in what batches one model trains.

    Attributes:
      steps: optimiser steps per run.
      batch_size: B, fresh samples per step.
      log_every: the loss curve holds the mean loss of each block of this many steps.
      schedule: "constant" or "cosine" (cosine decay to 0 after a linear warm-up).
      warmup_steps: linear warm-up from 0 (both schedules).
      snapshot_every: keep the parameters every this many steps (and at step 0) for
        training dynamics; 0 keeps only the final ones.
      eval_samples: fresh samples for `final_loss` (rounded up to whole batches). The
        default 65,536 costs about 20 training steps and resolves the pairwise-interference
        term that separates solutions at density 0.01 (about 6 samples per 1,000 have two
        features on); 8,192 was too few for best-of-seeds choices there.
    """

    steps: int = 10_000
    batch_size: int = 1024
    log_every: int = 100
    schedule: str = "constant"
    warmup_steps: int = 0
    snapshot_every: int = 0
    eval_samples: int = 65_536

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
        """Batches of B samples in the final evaluation (at least `eval_samples`)."""
        return math.ceil(self.eval_samples / self.batch_size)


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
    """

    correlation: str = "independent"
    set_size: int = 1
    magnitude: str = "uniform"


@dataclasses.dataclass(frozen=True)
class Spec:
    """The static part of a sweep: one compiled program per Spec.

    Attributes:
      model, train, data: see ModelSpec, TrainSpec, DataSpec.
    """

    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    data: DataSpec = DataSpec()
