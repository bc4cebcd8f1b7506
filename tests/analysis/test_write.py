"""`analyze_store` (toymodels/analysis/write.py) and `toymodels analyze`: the analysis
variables written into the results directory, the costly extras only when asked for."""

import shutil

import numpy as np
import pytest

import toymodels as tm
from toymodels.analysis.write import analyze_store
from toymodels.cli import main
from toymodels.errors import UserError

from helpers import config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    c = config(train={"steps": 20, "batch_size": 32, "log_every": 10},
               sweep={"sparsity": [0.0, 0.9], "seed": [0]})
    return tm.run_sweep(c, tmp_path_factory.mktemp("write") / "run", quiet=True)


@pytest.fixture
def results(trained, tmp_path):
    """A fresh copy of the trained sweep for each test (they write into it)."""
    return shutil.copytree(trained, tmp_path / "run")


def test_stores_the_extras_asked_for_and_no_others(results):
    ds = analyze_store(results, extras=["basis_kurtosis_p"])
    stored = tm.load(results)
    assert "feature_norm" in stored and "norm_flip_rate" in stored
    assert "basis_kurtosis_p" in stored and "rescaled_loss" not in stored
    np.testing.assert_array_equal(stored.basis_kurtosis_p, ds.basis_kurtosis_p)
    with pytest.raises(UserError, match="unknown analysis extra 'nope'; valid: "):
        analyze_store(results, extras=["nope"])


def test_cli_extra_is_repeatable_and_an_unknown_one_is_one_line(results, capsys):
    assert main(["analyze", str(results)]) == 0
    assert not {"basis_kurtosis_p", "rescaled_loss"} & set(tm.load(results).data_vars)
    assert main(["analyze", str(results), "--extra", "rescaled_loss",
                 "--extra", "basis_kurtosis_p"]) == 0
    stored = tm.load(results)
    assert stored.rescaled_loss.dims == ("sparsity", "seed", "rescale")
    assert stored.basis_kurtosis_p.dims == ("sparsity", "seed")
    capsys.readouterr()
    assert main(["analyze", str(results), "--extra", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert ("unknown analysis extra 'nope'; valid: basis_kurtosis_p, rescaled_loss, "
            "vulnerability") in err
