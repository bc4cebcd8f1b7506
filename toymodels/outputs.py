"""The paths a command writes (an image, a page, a folder), checked before any work, so
that a mistake in one costs one line at once and not an error after the work is done.

A check creates nothing: the folders a path needs are made when it is written
(`written`), so a command refused later (a bad variable, a missing results directory)
leaves nothing behind.

Example:
  >>> output_file("plots/intro.xyz", "--out", (".png", ".pdf"), "an image")
  Traceback (most recent call last):
  ...
  toymodels.errors.UserError: plots/intro.xyz: --out: an image ending .png or .pdf, got .xyz
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from toymodels.errors import UserError
from toymodels.store import why


def output_file(path: str | Path, flag: str, suffixes: tuple[str, ...], what: str) -> Path:
    """Checks that `path` can be written as a file: it is not a folder, it ends in one of
    `suffixes`, and its nearest existing ancestor is a folder one may write to.

    Args:
      path: the file to write (new, or replaced).
      flag: the option that named it, e.g. "--out" (for the message).
      suffixes: the allowed endings, e.g. (".png", ".pdf"), lower case.
      what: what the file is, e.g. "an image" (for the message).

    Returns:
      `path` as a Path.

    Raises:
      UserError: one line naming the path, the flag, what is allowed and what was given.
    """
    path = Path(path)
    allowed = f"{what} ending {_either(suffixes)}"
    if path.is_dir():
        raise UserError(f"{path}: {flag}: {allowed}, got a folder")
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{path}: {flag}: {allowed}, got {path.suffix or 'no extension'}")
    _writable_ancestor(path, flag, path.parent)  # an existing file is replaced
    return path


def output_dir(path: str | Path, flag: str) -> Path:
    """Checks that `path` is a folder one may write to, or can be made one.

    Raises:
      UserError: `path` is a file, or one of its ancestors is, or it cannot be written.
    """
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise UserError(f"{path}: {flag}: a folder (new or existing), got {_kind(path)}")
    _writable_ancestor(path, flag)
    return path


@contextlib.contextmanager
def written(path: Path, flag: str) -> Iterator[Path]:
    """Makes the folders `path` needs; inside, an OSError (disk full, a folder removed
    meanwhile) becomes one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
    except OSError as e:
        raise UserError(f"{path}: {flag}: cannot write it ({why(e)})") from None


def _writable_ancestor(path: Path, flag: str, start: Path | None = None) -> None:
    """The nearest existing one of `start` (default `path`) and its ancestors must be a
    folder (the others are made when written) that one may write into."""
    start = path if start is None else start
    nearest = next((p for p in (start, *start.parents) if os.path.lexists(p)), Path("."))
    if not nearest.is_dir():
        raise UserError(f"{path}: {flag}: a path whose parents are folders, "
                        f"got {nearest}, {_kind(nearest)}")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise UserError(f"{path}: {flag}: a path inside a folder one may write to, "
                        f"got {nearest} (permission denied)")


def _kind(path: Path) -> str:
    """What is at `path` where a folder is wanted."""
    return "a file" if path.is_file() else "not a folder"


def _either(items: tuple[str, ...]) -> str:
    """'.a', '.a or .b', '.a, .b or .c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"
