"""The `[[checks]]` entries: each validated by its own check type's model, which is imported
only when a config uses that type (the registry is `jobs.CHECK_TYPES`).

Errors keep pydantic's shape, so `daemon.config.problems` renders them like any other:
`checks[api].port: …`, `checks[x]: unknown check type 'htp'; use one of …`.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import PlainValidator, SerializeAsAny, WithJsonSchema
from pydantic_core import PydanticCustomError

from jobs import CHECK_TYPES, load_check_class
from jobs.base import CheckSpec


def validate_check(value: Any) -> CheckSpec:
    """One `[[checks]]` table → the model of its `type`."""
    if isinstance(value, CheckSpec):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("model_type", "a check is a table ([[checks]])")
    kind = value.get("type")
    if kind is None:
        raise PydanticCustomError("union_tag_not_found", "missing `type`")
    if not isinstance(kind, str) or kind not in CHECK_TYPES:
        raise PydanticCustomError(
            "union_tag_invalid", "unknown check type {tag}", {"tag": str(kind)}
        )
    return load_check_class(kind).model_validate(value)


AnyCheck = Annotated[
    SerializeAsAny[CheckSpec],
    PlainValidator(validate_check),
    WithJsonSchema({"type": "object", "description": "A check; see the schema of its type."}),
]
"""A check of any registered type, loaded lazily. The full schema: `checks_json_schema`."""


def checks_json_schema() -> dict[str, Any]:
    """The JSON Schema of `[[checks]]` entries with every type: loads every check module."""
    from pydantic import Field, TypeAdapter

    classes = tuple(load_check_class(name) for name in CHECK_TYPES)
    every: Any = Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007 - registry
    schema: dict[str, Any] = TypeAdapter(list[every]).json_schema()
    return schema
