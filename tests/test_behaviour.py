"""The behaviour of the sweep engine, the config parser and the LLC pass, recorded before
their refactor in tests/fixtures/behaviour/ (by its record.py, from the code at 68c55d3)
and held here: every sweeps/*.toml resolves to the same config (exactly, everywhere), and
four small sweeps and two `toymodels llc` passes give the same variables, dims and
coordinates.

Bit-identity is a property of one machine (tests/portable.py): on the machine and
versions of fingerprint.json (CPU, its vector instruction sets, jax/jaxlib, backend,
XLA_FLAGS) every array is compared bit for bit, NaN padding included. Elsewhere floats are
compared within `TOLERANCE` by kind; integers, booleans, and the floats that are labels or
inputs rather than results (importance, density, llc_epsilon, llc_below_init) exactly.

Measured on the recording machine (2-core AMD EPYC, family 25 model 17, AVX-512, jax
0.10.2), recording again with XLA_FLAGS=--xla_cpu_max_isa=SSE4_2, =AVX and =AVX2 (a plain
rerun gave the same bits; SSE4_2 and AVX gave the same bits as each other; AVX2 changed
only the SAE sweep, by at most 7.4e-7):
  * toy-model weights (W, b, W_snapshots, b_snapshots of the toy, static and llc sweeps):
    max |diff| 6.0e-8 (O(1) weights after 100-200 steps).
  * SAE parameters (encoder, decoder, b_enc, b_dec; truth, the synthetic features): max
    |diff| 2.6e-6 (encoder; decoder 1.8e-6, truth 1.2e-7).
  * losses (loss, final_loss, final_loss_se, train_loss, test_loss, llc_init_loss, the
    chains' losses llc_trace): max relative diff 2.7e-7 (final_loss_se); llc_acceptance,
    compared the same way, 3.8e-7.
  * LLC estimates (llc, llc_se, llc_snapshots, llc_snapshots_se; n beta = 46 times a
    difference of mean losses): max |diff| 3.3e-6 (llc_snapshots, values up to 18).
  * every integer and boolean (nonfinite_step, since_fired, llc_trusted, ...), importance,
    density, llc_epsilon and llc_below_init: identical under every flag. The nearest draw
    to L(w*) (what llc_below_init counts) is 9e-5 away, 1500x the chains' 6e-8.
The LLC estimates moved little enough to keep a meaningful tolerance: none is compared
only on the recording machine.

One deliberate change since: the LLC passes' fixtures (llc_plain, llc_snapshots and their
layout) were recorded again when every estimate gained its bias diagnostic
(llc_settings_ratio, llc_relaxation: compared as losses, max relative diff 3.6e-7 under
--xla_cpu_max_isa=SSE4_2; llc_untrusted, its reasons), llc_se became the sample std (ddof 1: x1.414 with these 2
chains) and llc_trusted the new rule; llc, llc_trace and every other array were the
recorded bits, and toy, sae, static and llc_train recorded again gave the same bits
(the progress reports inside the compiled blocks change none). Not measured: GPUs (no device was lent to this task).
What a real change does, for scale: a learning rate 1% higher moves the toy weights
2.5e-3, the SAE parameters 9e-3, the losses about 1e-3 (0.4-1% relative); gamma 101 instead of 100 moves llc
4e-3. The tolerances below are 20-30x the worst measured difference and 40x or more below
those changes.

To measure again: `XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 python tests/fixtures/behaviour/record.py
/tmp/scratch` and compare its npz files with the fixture's. To record anew (a deliberate
change of behaviour only): `python tests/fixtures/behaviour/record.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import tomllib
from pathlib import Path

import jax
import jaxlib
import numpy as np
import pytest

import toymodels
from toymodels.cli import main
from toymodels.spec import DataSpec, ModelSpec
from toymodels.trainers import get_trainer

FIXTURE = Path(__file__).parent / "fixtures" / "behaviour"
SWEEPS = Path(__file__).parents[1] / "sweeps"


# ---- the code under test: every call of it goes through these functions (record.py uses
# them too), so that an API change is adapted here, in one place


def train_sweep(raw: dict, out: Path):
    """Trains the sweep of the raw config (a toy-model or an SAE sweep) into `out`; its
    Dataset."""
    toymodels.run_sweep(toymodels.parse_config(raw), out, quiet=True)
    return toymodels.load(out)


def make_source(sweep_file: Path, overrides: list[str], out: Path) -> None:
    """Trains a sweep file (with `--set` overrides) into `out`: an SAE sweep's source."""
    toymodels.run_sweep(toymodels.load_config(sweep_file, tuple(overrides)), out, quiet=True)


def run_llc(out: Path, flags: list[str]):
    """`toymodels llc OUT FLAGS...` (in this process); the Dataset with its llc variables."""
    assert main(["llc", str(out), "--quiet", *flags]) == 0
    return toymodels.load(out)


def resolved_dict(path: Path, cwd: Path) -> dict:
    """The fully resolved config of a sweep file as plain JSON data (lists, not tuples).
    Relative paths in it (an SAE sweep's `sae.source`) are read from `cwd`, when the
    trainer resolves the config (parsing is pure)."""
    with contextlib.chdir(cwd):
        config = toymodels.load_config(path)
        config = get_trainer(config.trainer).resolve(config)
        return json.loads(json.dumps(config.to_dict()))


def source_facts(out: Path) -> dict:
    """What a resolved SAE config pins of its results-directory source, read independently
    of the SAE code: the source manifest's [model] (its defaults filled by `ModelSpec`) and
    the input-law fields of its [data] (`DataSpec`)."""
    raw = tomllib.loads(json.loads((out / "manifest.json").read_text())["config"])
    model = dataclasses.asdict(ModelSpec(**raw["model"]))
    data = dataclasses.asdict(DataSpec(**{k: v for k, v in raw.get("data", {}).items()
                                                    if k in DataSpec.__dataclass_fields__}))
    return json.loads(json.dumps({"source_model": model, "source_data": data}))


def needs_source(raw: dict) -> str | None:
    """The results directory a sweep file reads (an SAE sweep's `sae.source`), or None."""
    source = raw.get("sae", {}).get("source")
    return None if source in (None, "synthetic") or source.startswith("zoo:") else source


def arrays(ds, names=None) -> dict[str, np.ndarray]:
    """{variable: values} of the Dataset's data variables (all of them, or `names`)."""
    return {name: ds[name].values for name in (list(ds.data_vars) if names is None else names)}


def layout(ds, names=None) -> dict:
    """The dims of each variable and the coordinates of those dims (as JSON data)."""
    names = list(ds.data_vars) if names is None else names
    dims = {name: list(ds[name].dims) for name in names}
    used = sorted({d for ds_dims in dims.values() for d in ds_dims if d in ds.coords})
    return {"dims": dims, "coords": {d: ds[d].values.tolist() for d in used}}


# ---- the machine


def fingerprint() -> dict:
    """What decides the bits XLA computes on a CPU: the CPU (model and the vector
    instruction sets XLA targets), the jax/jaxlib versions, the backend and XLA_FLAGS
    (--xla_cpu_max_isa changes the code)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    first = text.split("\n\n")[0].splitlines()  # the first processor's block
    pairs = (line.split(":", 1) for line in first if ":" in line)
    fields = {key.strip(): value.strip() for key, value in pairs}
    flags = set(fields.get("flags", "").split())
    return {
        "cpu": fields.get("model name", platform.processor()),
        "cpu_family_model": [fields.get("cpu family"), fields.get("model")],
        **{flag: flag in flags for flag in ("avx512f", "avx2", "fma")},
        "avx512": sorted(f for f in flags if f.startswith("avx512")),
        "machine": platform.machine(),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


# ---- comparison

TOLERANCE = {
    # toy-model weights, 25x 6.0e-8
    "weights": {"rtol": 0.0, "atol": 1.5e-6},
    # SAE parameters, 23x 2.6e-6
    "sae": {"rtol": 0.0, "atol": 6e-5},
    # losses, chain losses, acceptance rates: relative, 26x 3.8e-7 (floor for zeros)
    "loss": {"rtol": 1e-5, "atol": 1e-12},
    # LLC estimates and their standard errors, 30x 3.3e-6
    "llc": {"rtol": 0.0, "atol": 1e-4},
}
EXACT = {"importance", "density", "llc_epsilon", "llc_below_init"}
LLC_ESTIMATES = {"llc", "llc_se", "llc_snapshots", "llc_snapshots_se"}
SAE_PARAMETERS = {"encoder", "decoder", "b_enc", "b_dec", "truth"}


def kind_of(name: str, dtype: np.dtype) -> str:
    """How the variable `name` is compared off the recording machine: "exact" or a
    `TOLERANCE` kind."""
    if dtype.kind != "f" or name in EXACT:
        return "exact"
    if name in LLC_ESTIMATES:
        return "llc"
    if "loss" in name or name in ("llc_trace", "llc_acceptance", "llc_settings_ratio",
                                  "llc_relaxation"):
        return "loss"
    return "sae" if name in SAE_PARAMETERS else "weights"


def read_json(name: str):
    return json.loads((FIXTURE / name).read_text())


def same_json(got, want, what: str) -> None:
    """Equal as JSON text, so that 1 and 1.0 differ."""
    got = json.loads(json.dumps(got))
    assert got == want, what
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True), \
        f"{what}: an integer became a float or back"


@pytest.fixture(scope="module")
def same_machine() -> bool:
    """True where the fixture's bits are expected: this machine is the recording one."""
    return fingerprint() == read_json("fingerprint.json")


def check(name: str, ds, same_machine: bool, names=None) -> None:
    """The variables `names` (default all) of `ds` against the fixture's `name`.npz, and
    their dims and coordinates against its layout.json entry."""
    with np.load(FIXTURE / f"{name}.npz") as npz:
        expected = dict(npz)
    got = arrays(ds, names)
    assert sorted(got) == sorted(expected), name
    same_json(layout(ds, names), read_json("layout.json")[name], f"{name}: dims, coordinates")
    for var, want in expected.items():
        have, what = got[var], f"{name}.npz {var}"
        assert (have.dtype, have.shape) == (want.dtype, want.shape), what
        kind = "exact" if same_machine else kind_of(var, want.dtype)
        if kind == "exact":  # NaN equals NaN (the padding of static axes)
            np.testing.assert_array_equal(have, want, err_msg=f"{what} (exact)")
        else:
            np.testing.assert_allclose(have, want, **TOLERANCE[kind],
                                       err_msg=f"{what} ({kind})")


# ---- the tests


def test_every_sweep_file_resolves_as_recorded(tmp_path):
    recorded = read_json("configs.json")
    source = recorded["source"]
    cwd, empty = tmp_path / "cwd", tmp_path / "empty"
    empty.mkdir()
    make_source(SWEEPS.parent / source["sweep"], source["overrides"], cwd / source["out"])
    missing = set(recorded["configs"]) - {p.name for p in SWEEPS.glob("*.toml")}
    assert not missing, f"recorded sweep files gone: {sorted(missing)}"
    for name, entry in sorted(recorded["configs"].items()):
        reads = needs_source(tomllib.loads((SWEEPS / name).read_text()))
        against = entry["resolved_against"]
        assert reads == (against and against["sae.source"]), name
        config = resolved_dict(SWEEPS / name, cwd if reads else empty)
        if reads:  # one deliberate change since the recording: the source's facts ride along
            sae = config["sae"]
            pins = {"source_model": sae.pop("source_model"), "source_data": sae.pop("source_data")}
            same_json(pins, source_facts(cwd / sae["source"]), f"{name}: the pinned source")
        same_json(config, entry["config"], name)
        assert list(config["sweep"]) == entry["axes"], f"{name}: the order of the axes"


@pytest.mark.parametrize("case", ["toy", "sae", "static"])
def test_sweep_gives_the_recorded_variables(case, tmp_path, same_machine):
    raw = read_json("cases.json")[case]["raw"]
    check(case, train_sweep(raw, tmp_path / case), same_machine)


@pytest.mark.slow  # 20 s (the default suite's 7-minute budget; CI runs it)
def test_llc_passes_give_the_recorded_variables(tmp_path, same_machine):
    case = read_json("cases.json")["llc"]
    out = tmp_path / "llc"
    trained = train_sweep(case["raw"], out)
    check("llc_train", trained, same_machine)
    for name, flags in case["passes"].items():
        ds = run_llc(out, flags)
        check(name, ds, same_machine, [v for v in ds.data_vars if v.startswith("llc")])
        for var in trained.data_vars:  # the pass adds variables, changes none of the sweep's
            np.testing.assert_array_equal(ds[var].values, trained[var].values, err_msg=var)
