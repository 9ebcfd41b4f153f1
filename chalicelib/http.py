"""The HTTP edge: parsing into pydantic models and mapping the service's errors to Chalice's."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from chalice import BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnauthorizedError
from chalice.app import ChaliceViewError
from pydantic import BaseModel, ValidationError

from chalicelib.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

ERROR_MAP: Mapping[type[Exception], type[ChaliceViewError]] = {
    Invalid: BadRequestError,
    NotFound: NotFoundError,
    Conflict: ConflictError,
    Unauthorized: UnauthorizedError,
    Forbidden: ForbiddenError,
}


def describe(error: ValidationError) -> str:
    """One line per problem, each naming its field: 'resourceId: must be a 24-character hex ObjectId'."""
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "body"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not a known field"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def parse(model: type[M], data: Any) -> M:
    """Validate input into `model`; Invalid (400) naming each bad field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid("body: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(describe(exc)) from exc


def as_chalice_error(error: Exception) -> ChaliceViewError | None:
    for kind, chalice_error in ERROR_MAP.items():
        if isinstance(error, kind):
            return chalice_error(str(error))
    return None


def http_errors(view: Callable[P, R]) -> Callable[P, R]:
    """Turn the service's errors into Chalice's `{"Code", "Message"}` responses."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return view(*args, **kwargs)
        except (Invalid, NotFound, Conflict, Unauthorized, Forbidden) as exc:
            mapped = as_chalice_error(exc)
            assert mapped is not None
            raise mapped from exc

    return wrapper
