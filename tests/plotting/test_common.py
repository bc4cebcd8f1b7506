"""Names and titles (toymodels/plotting/common.py) come from the data."""

from toymodels import plotting


def test_labels_and_titles_come_from_the_data(ds):
    assert plotting.label("sparsity") == "sparsity S"
    assert plotting.label("feature_probability") == "feature density 1−S"
    assert plotting.label("relative_importance") == "relative importance r"
    assert plotting.label("some_new_axis") == "some new axis"
    assert plotting.title(ds).startswith("synthetic (relu_output, n=5, m=2, 400 steps)")
