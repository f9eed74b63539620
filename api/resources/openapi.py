"""``GET /api/openapi.json``: the API described by its own route table; no token needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from access import Permission
from api.openapi import document
from api.routes import Call, Route
from api.schemas import OpenAPIDocument


def routes(table: Callable[[], Sequence[Route]]) -> list[Route]:
    async def get_document(call: Call) -> dict[str, Any]:
        return document(table())

    return [Route("GET", "/api/openapi.json", Permission.PUBLIC, get_document,
                  "This document: OpenAPI 3.1, generated from the route table",
                  OpenAPIDocument)]
