"""The OpenAPI 3.1 document, generated from the route table and its pydantic schemas, so it
cannot drift from what the API does: ``GET /api/openapi.json``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from access import Permission
from api.errors import (
    STATUS,
    ApiError,
    BadRequest,
    BodyTooLarge,
    Forbidden,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    Unavailable,
    UnsupportedMediaType,
)
from api.routes import Route
from api.schemas import ErrorAnswer

REF = "#/components/schemas/{model}"


def _model_schemas(
    routes: Sequence[Route],
) -> tuple[dict[tuple[Any, JsonSchemaMode], Any], dict[str, Any]]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorAnswer, "serialization")]
    for route in routes:
        if route.body_schema is not None:
            models.append((route.body_schema, "validation"))
        if isinstance(route.response, type) and issubclass(route.response, BaseModel):
            models.append((route.response, "serialization"))
    unique = list(dict.fromkeys(models))
    refs, definitions = models_json_schema(unique, ref_template=REF)
    by_model: dict[tuple[Any, JsonSchemaMode], Any] = dict(refs)
    return by_model, definitions.get("$defs", {})


def _parameters(route: Route) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for where, schema in (("path", route.path_schema), ("query", route.query_schema)):
        doc = schema.model_json_schema()
        required = set(doc.get("required", []))
        for name, prop in doc.get("properties", {}).items():
            param: dict[str, Any] = {
                "name": name, "in": where, "required": where == "path" or name in required,
                "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
            }
            if "description" in prop:
                param["description"] = prop["description"]
            out.append(param)
    return out


def _errors(route: Route) -> list[type[ApiError]]:
    errors: list[type[ApiError]] = [BadRequest, NotFound, MethodNotAllowed]
    if route.permission is not Permission.PUBLIC:
        errors += [NotAuthenticated, Forbidden]
    if route.body_schema is not None:
        errors += [BodyTooLarge, UnsupportedMediaType]
    errors += [*route.errors, Unavailable]
    return errors


def document(routes: Sequence[Route], *, title: str = "Hotline API",
             version: str = "1") -> dict[str, Any]:
    refs, schemas = _model_schemas(routes)
    error_ref = refs[(ErrorAnswer, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.raw:
            ok: dict[str, Any] = {"description": route.summary,
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}
        elif route.media_type != "application/json":
            ok = {"description": route.summary, "content": {route.media_type: {
                "schema": {"type": "string", "format": "binary"}}}}
        else:
            if (route.response, "serialization") in refs:
                schema = refs[(route.response, "serialization")]
            else:
                schema = TypeAdapter(route.response).json_schema(ref_template=REF)
            ok = {"description": route.summary, "content": {"application/json": {"schema": schema}}}
        responses: dict[str, Any] = {"200": ok}
        for error in _errors(route):
            entry = responses.setdefault(
                str(STATUS[error.error_id]),
                {"description": "", "content": {"application/json": {"schema": error_ref}}},
            )
            entry["description"] = ", ".join(
                filter(None, [entry["description"], error.error_id])
            )
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route),
            "parameters": _parameters(route),
            "responses": responses,
            "x-permission": route.permission.value,
            "security": [] if route.permission is Permission.PUBLIC else [{"bearer": []}],
        }
        if route.audit:
            operation["x-audit"] = route.audit
        if route.body_schema is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {
                    "schema": refs[(route.body_schema, "validation")]}},
            }
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation_id(route: Route) -> str:
    words = [s.strip("{}").partition(":")[0] for s in route.segments]
    return re.sub(r"[^a-z0-9_]", "_", "_".join([route.method.lower(), *words]).lower())
