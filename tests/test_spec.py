"""toymodels.spec: the static specifications (one compiled program per Spec)."""

import dataclasses
import math

import pytest

from toymodels.config import SCHEMA, STATIC_TABLES
from toymodels.spec import EVAL_BATCH, DataSpec, ModelSpec, Spec, TrainSpec

from helpers import config


@pytest.mark.parametrize("steps, log_every, snapshot_every, n_logs, n_snapshots", [
    (60, 20, 0, 3, 0),
    (60, 20, 20, 3, 3),
    (1000, 100, 250, 10, 4),
    (7, 7, 1, 1, 7),
])
def test_train_spec_counts_points_of_the_curve_and_snapshots(steps, log_every, snapshot_every,
                                                             n_logs, n_snapshots):
    train = TrainSpec(steps=steps, log_every=log_every, snapshot_every=snapshot_every)
    assert train.n_logs == n_logs and train.n_snapshots == n_snapshots


@pytest.mark.parametrize("samples", [1, EVAL_BATCH - 1, EVAL_BATCH, EVAL_BATCH + 1, 65_536,
                                     262_144, 300_000])
def test_the_evaluation_takes_whole_batches_of_at_least_eval_samples(samples):
    n = TrainSpec(eval_samples=samples).n_eval_batches
    assert n * EVAL_BATCH >= samples > (n - 1) * EVAL_BATCH
    assert n == math.ceil(samples / EVAL_BATCH)


def test_a_spec_is_frozen_and_equal_specs_are_one_key():
    """A Spec keys a compiled program: equal Specs hash alike, a changed field is
    another key, and no field can be changed in place."""
    a = Spec(ModelSpec("relu_output", 20, 5), TrainSpec(steps=100), DataSpec(dataset_size=8))
    b = Spec(ModelSpec("relu_output", 20, 5), TrainSpec(steps=100), DataSpec(dataset_size=8))
    programs = {a: "compiled"}
    assert a == b and hash(a) == hash(b) and programs[b] == "compiled"
    assert dataclasses.replace(a, model=ModelSpec("relu_output", 20, 6)) not in programs
    for obj, field in ((a, "model"), (a.model, "n_hidden"), (a.train, "steps"),
                       (a.data, "inputs")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


def test_swept_values_leave_the_spec_alone_and_shapes_change_it():
    """What is swept as traced values (learning rate, sparsity, dropout, seed) gives one
    Spec for the whole grid; a shape (n_hidden) or a step count gives another."""
    base = config(sweep={"seed": [0]})
    for sweep in ({"learning_rate": [1e-3, 1e-2]}, {"sparsity": [0.0, 0.99]},
                  {"dropout": [0.0, 0.5]}, {"seed": [0, 1, 2]}):
        assert config(sweep=sweep).spec == base.spec, sweep
    assert config(model={"n_hidden": 3}, sweep={"seed": [0]}).spec != base.spec
    assert config(train={"steps": 40}, sweep={"seed": [0]}).spec != base.spec


@pytest.mark.parametrize("spec_type, table", [(ModelSpec, "model"), (TrainSpec, "train"),
                                              (DataSpec, "data")])
def test_every_spec_field_is_a_key_of_its_table_with_the_same_default(spec_type, table):
    """The spec dataclasses hold the static part of the toy tables (toymodels.config.SCHEMA,
    where each key is declared once, its default read from the field): every field is a
    key of its table, with the field's default."""
    for field in dataclasses.fields(spec_type):
        assert field.name in SCHEMA[table], f"{spec_type.__name__}.{field.name}"
        assert field.default == SCHEMA[table][field.name].default, f"{table}.{field.name}"


def test_every_static_key_fixes_a_spec_field():
    """A static axis splits the grid into groups with one compiled program each: its key
    must be a field of the Spec that the program closes over."""
    fields = {"model": ModelSpec, "train": TrainSpec, "data": DataSpec}
    for key, table in STATIC_TABLES.items():
        assert key in {f.name for f in dataclasses.fields(fields[table])}, key
