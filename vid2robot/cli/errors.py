"""How the CLIs refuse bad input: one line naming the file or key and the fix, exit status 2, no traceback.

Errors of the user's making (bad values, missing or malformed files, a refusal to overwrite) are the
exception types in ``USER_ERRORS``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from hydra.errors import InstantiationException
from omegaconf.errors import OmegaConfBaseException

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    OmegaConfBaseException,
)


def _user_error(err: BaseException) -> BaseException | None:
    """The user-facing error inside ``err`` (instantiate wraps a constructor's ValueError), else None."""
    if isinstance(err, InstantiationException):
        cause = err.__cause__
        return cause if isinstance(cause, USER_ERRORS) else None
    return err if isinstance(err, USER_ERRORS) else None


@contextlib.contextmanager
def report_user_errors(app: str) -> Iterator[None]:
    """Turn a user error raised inside into ``<app>: error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except Exception as err:
        user = _user_error(err)
        if user is None:
            raise
        print(f"{app}: error: {user}", file=sys.stderr)
        raise SystemExit(2) from None
