"""Residual MLPs that compute (issue 27): the model of ONE example (`model`), the tasks'
labels and input laws (`tasks`), and the training of blocks of runs (`train`), which
`toymodels.trainers.residual` plugs into the sweep engine."""
