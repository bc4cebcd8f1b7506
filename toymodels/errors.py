"""The exceptions a user can cause; the CLI prints each as one line, without a traceback."""

import signal


class UserError(Exception):
    """A bad config, a bad argument or missing results: one line, no traceback.

    Example:
      >>> str(UserError("sweeps/x.toml: train.steps: must be a positive integer, got 0"))
      'sweeps/x.toml: train.steps: must be a positive integer, got 0'
    """


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM: the CLI prints the message as one line and exits 128 +
    `signum` (130 for SIGINT, 143 for SIGTERM). A KeyboardInterrupt, so that code which
    handles Ctrl-C handles it too.

    Example:
      >>> e = Interrupted("interrupted: 16 of 48 runs saved; rerun the same command to resume")
      >>> e.signum, str(e)[:12]
      (2, 'interrupted:')
    """

    def __init__(self, message: str = "interrupted", signum: int = int(signal.SIGINT)):
        super().__init__(message)
        self.signum = signum
