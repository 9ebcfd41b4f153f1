"""Input into pydantic models, with one field-named Invalid per problem.

Shared by every way input arrives: HTTP bodies and queries (chalicelib/http.py), SQS messages
(chalicelib/usecases/intake.py) and dead letters. Knows nothing of HTTP: the edge maps Invalid to a 400.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.errors import Invalid

M = TypeVar("M", bound=BaseModel)


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
    """Validate input into `model`; Invalid naming each bad field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid("body: must be a JSON object")
    try:
        # By the documented (camelCase) names only; Python's names are not part of the API.
        return model.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise Invalid(describe(exc)) from exc
