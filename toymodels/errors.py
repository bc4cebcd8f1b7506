"""The exceptions a user can cause; the CLI prints each as one line, without a traceback."""

import difflib
import signal

SHOWN = 8  # allowed values listed in one error line at most (the most similar first)


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


def unknown(given, allowed, what: str = "key") -> str:
    """The words of an error for a name not in `allowed`: a "did you mean" for a close
    one, then at most `SHOWN` allowed names, the most similar first.

    Example:
      >>> unknown("stpes", ["steps", "batch_size", "log_every"])
      'unknown key; did you mean steps? allowed: steps, batch_size, log_every'
      >>> unknown("x", [f"k{i}" for i in range(20)], "option")[-17:]
      'k7, … (20 in all)'
    """
    allowed = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(given), allowed, n=SHOWN, cutoff=0.6)
    order = close + [a for a in allowed if a not in close]
    shown = ", ".join(order[:SHOWN]) + (f", … ({len(order)} in all)" if len(order) > SHOWN else "")
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown {what}; {hint}allowed: {shown}"
