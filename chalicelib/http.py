"""The HTTP edge: request bodies read strictly, and the service's errors mapped to Chalice's.

Parsing into the models is chalicelib/validation.py's `parse`, shared with the queue handlers."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from chalice import BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnauthorizedError
from chalice.app import ChaliceViewError, Request

from chalicelib.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, Unauthorized

P = ParamSpec("P")
R = TypeVar("R")

# The largest request body any route reads (the biggest create body is a few KiB; API Gateway's own
# limit is 10 MB). Larger ones are answered 413 before they are parsed.
MAX_BODY_BYTES = 256 * 1024


class RequestTooLargeError(ChaliceViewError):
    """Chalice has no 413 of its own; its error body's `Code` is this class's name."""

    STATUS_CODE = 413


ERROR_MAP: Mapping[type[Exception], type[ChaliceViewError]] = {
    Invalid: BadRequestError,
    NotFound: NotFoundError,
    Conflict: ConflictError,
    Unauthorized: UnauthorizedError,
    Forbidden: ForbiddenError,
    TooLarge: RequestTooLargeError,
}


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_body(request: Request) -> Any:
    """The request's JSON body, or None when it has none.

    Read from the raw bytes whatever the Content-Type says (Chalice has already answered 415 to a
    type other than JSON); strict JSON only (no NaN or Infinity); TooLarge (413) past MAX_BODY_BYTES;
    Invalid (400) for anything that is not a JSON object."""
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"body: larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return None
    try:
        data = json.loads(raw, parse_constant=_not_json_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser goes
        raise Invalid("body: is not valid JSON") from exc
    if not isinstance(data, dict):
        raise Invalid("body: must be a JSON object")
    return data


def as_chalice_error(error: Exception) -> ChaliceViewError | None:
    for kind, chalice_error in ERROR_MAP.items():
        if isinstance(error, kind):
            return chalice_error(str(error))
    return None


def error_code(error: Exception) -> str:
    """The `Code` the API answers for `error` (docs/errors.md); InternalServerError for any other."""
    mapped = as_chalice_error(error)
    return type(mapped).__name__ if mapped is not None else "InternalServerError"


def http_errors(view: Callable[P, R]) -> Callable[P, R]:
    """Turn the service's errors into Chalice's `{"Code", "Message"}` responses."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return view(*args, **kwargs)
        except (Invalid, NotFound, Conflict, Unauthorized, Forbidden, TooLarge) as exc:
            mapped = as_chalice_error(exc)
            assert mapped is not None
            raise mapped from exc

    return wrapper
