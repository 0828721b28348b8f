"""Errors a user caused or can fix, each of a kind that says what to do next.

Their message is shown as is: one line that names the problem, never a traceback. The kind
maps once to an HTTP status (api/errors.py) and a CLI exit code (core/cli), and says whether
trying again later can help (the Airflow DAG retries only those):

| class          | code            | HTTP | exit | retry |
|----------------|-----------------|------|------|-------|
| `DpeError`     | `invalid_input` | 422  | 2    | no    |
| `InvalidInput` | `invalid_input` | 422  | 2    | no    |
| `NotFound`     | `not_found`     | 404  | 3    | no    |
| `Conflict`     | `conflict`      | 409  | 4    | no    |
| `Unavailable`  | `unavailable`   | 503  | 5    | yes   |

An unexpected error (a bug) exits with 1 and is a 500, code `internal_error`.

With `--json`, a failing command prints `{"error": {"code", "message", "retryable"}}` on
stdout (`DpeError.as_dict`); the API answers `{"detail": message, "code": code}`.
"""

import socket

INTERNAL_ERROR = "internal_error"  # the code of an unexpected error: not the user's to fix


class DpeError(Exception):
    """A problem the user can act on; by default, input that cannot be used."""

    code = "invalid_input"
    http_status = 422
    exit_code = 2
    retryable = False

    def as_dict(self) -> dict:
        """What a script acts on: the kind's code, the message, whether to try again."""
        return {"code": self.code, "message": str(self), "retryable": self.retryable}


class InvalidInput(DpeError):
    """A value, file, option or source that cannot be used as given (a name that does not
    resolve included: trying again will not make it resolve)."""


class NotFound(DpeError):
    """What was asked for does not exist: a run id, a dataset version, a champion."""

    code = "not_found"
    http_status = 404
    exit_code = 3


class Conflict(DpeError):
    """The request contradicts the current state (e.g. a model that is not the project's)."""

    code = "conflict"
    http_status = 409
    exit_code = 4


class Unavailable(DpeError):
    """A service this needs does not answer now (MLflow, the object store, the ADEME API,
    a timeout): the same request may work later."""

    code = "unavailable"
    http_status = 503
    exit_code = 5
    retryable = True


def unknown_host(error: BaseException) -> bool:
    """Whether `error` comes from a host name that does not resolve (DNS): trying again will
    not make it resolve, the name is to be checked (an `InvalidInput`, not `Unavailable`)."""
    cause: BaseException | None = error
    seen = set()
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, socket.gaierror):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
