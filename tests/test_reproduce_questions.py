"""The quick reproduce of the LLC and open-question experiments (issues 13 and 14): each
writes its figures. A module of its own so that a second test worker runs it beside the
rest of the quick reproduce (tests/test_reproduce.py runs every other experiment)."""

import pytest

from toymodels.reproduce import EXPERIMENTS, reproduce

from helpers import EARLIER, ON_REQUEST, QUESTIONS

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_reproduce_of_the_questions_writes_their_figures(tmp_path):
    written = reproduce(QUESTIONS, quick=True, runs_dir=tmp_path / "runs",
                        plots_dir=tmp_path / "plots", quiet=True)
    assert [p.name for p in written] == [  # in registry order, as reproduce runs them
        spec.file for name in EXPERIMENTS if name in QUESTIONS for spec in EXPERIMENTS[name].plots
    ]
    assert all(p.parent.name == "quick" and p.read_bytes()[:8] == PNG
               and p.stat().st_size > 5000 for p in written)


def test_the_split_covers_every_experiment_once():
    """QUESTIONS (this module), EARLIER and ON_REQUEST (tests/test_reproduce.py), all in
    helpers."""
    assert sorted(EARLIER + list(QUESTIONS) + list(ON_REQUEST)) == sorted(EXPERIMENTS)
    assert not set(EARLIER) & set(QUESTIONS) and not set(ON_REQUEST) & set(QUESTIONS)
