"""The generated parts of the documentation, as Markdown: every key of every trainer's
schema, every variable `analyze` adds, every plot kind, every zoo model.

Each function reads the registry it documents (the schemas, `analysis.variables`,
`plotting.PLOTS`, `zoo`), so a key, variable, kind or model added there appears in the
docs without a second edit. The MkDocs hook `docs/hooks.py` replaces a marker
``<!-- generated: NAME -->`` in a page with `GENERATED[NAME]()`.

Example:
  >>> "| `steps` |" in key_reference()
  True
"""

from __future__ import annotations

import argparse
import math

from toymodels import zoo
from toymodels.cli import build_parser
from toymodels.analysis import residual, spd as spd_analysis, variables
from toymodels.checks import Key
from toymodels.config import SCHEMA
from toymodels.dictionary import analysis as sae_analysis
from toymodels.dictionary.config import SAE_SCHEMA, SAE_TRAIN
from toymodels.synthetic_config import SYNTHETIC_SCHEMA
from toymodels.plotting import PLOTS, plot_description, plot_options
from toymodels.plotting.needs import needs_text
from toymodels.residual_config import RESIDUAL_SCHEMA, RESIDUAL_TRAIN
from toymodels.spd_config import SPD_SCHEMA, SPD_TRAIN
from toymodels.trainers.llc import LLC_SCHEMA

NOT_A_VALUE = object()  # what no check allows: its ValueError says what is allowed
TABLES = (  # (heading, trainer, table name in the file, schema)
    ("Top level (every trainer but `[llc]`)", "toy, sae, residual, spd", "", SCHEMA[""]),
    ("`[model]`", "toy", "model", SCHEMA["model"]),
    ("`[data]`", "toy (a synthetic SAE source reads some; a residual sweep all but "
     "dataset_size and data_seed)", "data", SCHEMA["data"]),
    ("`[train]`", "toy", "train", SCHEMA["train"]),
    ("`[sae]`", "sae", "sae", SAE_SCHEMA),
    ("`[synthetic]`: an SAE sweep's synthetic world", "sae", "synthetic", SYNTHETIC_SCHEMA),
    ("`[train]` of an SAE sweep", "sae", "train", SAE_TRAIN),
    ("`[llc]`", "llc", "llc", LLC_SCHEMA),
    ("`[residual]`: residual MLPs that compute", "residual", "residual", RESIDUAL_SCHEMA),
    ("`[train]` of a residual sweep", "residual", "train", RESIDUAL_TRAIN),
    ("`[spd]`", "spd", "spd", SPD_SCHEMA),
    ("`[train]` of an SPD sweep", "spd", "train", SPD_TRAIN),
)
VARIABLE_TABLES = (  # (heading, when analyze adds them, rows (name, dims, description))
    ("Geometry", "every model", variables.VARIABLES),
    ("Privileged basis", "every model", variables.BASIS_VARIABLES),
    ("Privileged basis, on request (`--extra basis_kurtosis_p`)", "every model",
     variables.BASIS_P_VARIABLES),
    ("Norm reliance", "relu_output and relu_hidden, with b and density",
     variables.RELIANCE_VARIABLES),
    ("Norm reliance, on request (`--extra rescaled_loss`)", "as above",
     variables.RESCALED_LOSS_VARIABLES),
    ("Neurons", "every model; meaningful where the hidden layer has a ReLU",
     variables.NEURON_VARIABLES),
    ("Computation", "abs_computation", variables.ABS_VARIABLES),
    ("Adversarial vulnerability, on request (`--extra vulnerability`)",
     "linear and relu_output, with b and density", variables.ATTACK_VARIABLES),
    ("Memorisation", "finite datasets (`data.dataset_size`)", variables.POINT_VARIABLES),
    ("Training dynamics", "sweeps with snapshots (`train.snapshot_every`)",
     variables.SNAPSHOT_VARIABLES),
    ("Residual MLPs against their baselines", "residual-MLP sweeps (a `[residual]` table)",
     residual.VARIABLES),
    ("Residual MLPs: U-AND truth tables", "residual-MLP sweeps with task = \"uand\"",
     residual.UAND_VARIABLES),
)


def allowed(key: Key) -> str:
    """What a key allows, in the words of its own error message ("must be an integer
    >= 1"), or "any value" for a check that refuses nothing."""
    try:
        key.check(NOT_A_VALUE)
    except (ValueError, TypeError) as e:
        return str(e).removeprefix("must be ") or "any value"
    return "any value"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(key: Key) -> str:
    if key.default is None:
        return "(see description)"
    if isinstance(key.default, float) and math.isinf(key.default):
        return "inf"
    return f"`{key.default!r}`".replace("'", '"')


def key_table(table: str, schema: dict[str, Key]) -> str:
    """One table's keys: key, allowed values, default, sweep axis (traced, static or
    not sweepable), description."""
    rows = ["| key | allowed | default | as a sweep axis | what it does |",
            "|---|---|---|---|---|"]
    for name, key in schema.items():
        axis = key.axis or "not sweepable"
        rows.append(f"| `{name}` | {_cell(allowed(key))} | {_cell(_default(key))} | {axis} "
                    f"| {_cell(key.description)} |")
    return "\n".join(rows)


def key_reference() -> str:
    """Every key of every trainer's schema, one table per table of a sweep file."""
    parts = []
    for heading, trainer, table, schema in TABLES:
        parts += [f"### {heading}", "", f"Trainer: {trainer}.", "", key_table(table, schema), ""]
    return "\n".join(parts)


def variable_reference() -> str:
    """Every variable `toymodels analyze` adds (toy models, residual MLPs, then SAEs)."""
    parts = []
    for heading, when, rows in VARIABLE_TABLES:
        parts += [f"### {heading}", "", f"Added for: {when}.", "",
                  "| variable | dims (after the sweep axes) | what it is |", "|---|---|---|"]
        parts += [f"| `{name}` | {', '.join(dims) or 'scalar'} | {_cell(text)} |"
                  for name, dims, text in rows]
        parts.append("")
    parts += ["### Parameter decompositions (SPD)", "",
              "Added for: SPD sweeps (an `[spd]` table); `<M>` is each decomposed matrix "
              "(`W_in`, `W_out`, and `W_hidden` with the identity).", "",
              "| variable | dims (after the sweep axes) | what it is |", "|---|---|---|"]
    per_matrix = dict(spd_analysis.matrix_variables("<M>"))
    for name in spd_analysis.PATTERN_MATRICES:  # the one-hot pattern: W_in and W_out only
        per_matrix.update({k: v for k, v in spd_analysis.matrix_variables(name).items()
                           if k.startswith("ci_errors")})
    parts += [f"| `{name}` | scalar | {_cell(text)} |" for name, text in per_matrix.items()]
    parts += [f"| `{name}` | scalar | {_cell(text)} |"
              for name, text in spd_analysis.RUN_VARIABLES.items()]
    parts += [f"| `{name}` | feature | {_cell(text)} |"
              for name, text in spd_analysis.FEATURE_VARIABLES.items()]
    parts += ["", "### Sparse autoencoders", "", "Added for: SAE sweeps.", "",
              "| variable | what it is |", "|---|---|"]
    for table in sae_analysis.SAE_TABLES:
        parts += [f"| `{name}` | {_cell(text)} |" for name, text in table.items()]
    return "\n".join(parts) + "\n"


def _options(kind: str) -> str:
    """The `-o` options of a plot kind with their defaults."""
    params = plot_options(kind)
    if not params:
        return "none"
    return ", ".join(f"`{p.name}`" + (f" (default `{p.default!r}`)" if p.default is not p.empty
                                      else "") for p in params)


def plot_reference() -> str:
    """Every plot kind of `toymodels plot KIND DIR --out FILE [-o key=value ...]`: what it
    draws (its docstring's first paragraph), what it needs of a results directory
    (`plotting.needs.NEEDS`) and its `-o` options (its keyword arguments)."""
    parts = []
    for kind in PLOTS:
        parts += [f"### `{kind}`", "", plot_description(kind), "", f"Needs: {needs_text(kind)}.", "",
                  f"Options (`-o`): {_options(kind)}.", ""]
    return "\n".join(parts)


def zoo_reference() -> str:
    """Every zoo model: its name and what it illustrates."""
    rows = ["| model | what it illustrates |", "|---|---|"]
    rows += [f"| `{name}` | {_cell(zoo.describe(name))} |" for name in zoo.names()]
    return "\n".join(rows) + "\n"


def command_reference() -> str:
    """Every subcommand of `toymodels` with its one-line help (from the parser)."""
    rows = ["| command | what it does |", "|---|---|"]
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            rows += [f"| `toymodels {c.dest}` | {_cell(c.help)} |" for c in action._choices_actions]
    return "\n".join(rows) + "\n"


GENERATED = {"commands": command_reference, "keys": key_reference, "variables": variable_reference,
             "plots": plot_reference, "zoo": zoo_reference}
