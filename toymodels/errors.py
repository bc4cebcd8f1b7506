"""The one exception type a user can cause; the CLI prints it as one line and exits 2."""


class UserError(Exception):
    """A bad config, a bad argument or missing results: one line, no traceback.

    Example:
      >>> str(UserError("sweeps/x.toml: train.steps: must be a positive integer, got 0"))
      'sweeps/x.toml: train.steps: must be a positive integer, got 0'
    """
