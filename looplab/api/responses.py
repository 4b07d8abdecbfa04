"""The error answers of every API operation, declared in the OpenAPI schema in one place.

Every error has one JSON shape (:mod:`looplab.api.errors`), so the schema needs one model,
:class:`ErrorOut`, and a rule saying which statuses an operation can answer. The rule reads the
operation FastAPI generated, so a route added later is covered without doing anything:

=====  ====================================  =================================================
code   meaning                               declared on operations that
=====  ====================================  =================================================
400    the body could not be read            take a JSON body
401    missing or unknown bearer token       take a bearer token
403    the token's role may not do this      take a bearer token
404    no such project, record, version      have path parameters
409    the current state does not allow it   have path parameters or a request body
415    the body is not JSON                  take a JSON body
422    invalid input (a field, a value)      take parameters or a request body
413    the body is over the size limit       declare it themselves: ``responses=errors(413)``
503    a model file or the prediction log    declare it themselves: ``responses=errors(503)``
       is unavailable; retry later
=====  ====================================  =================================================

FastAPI's own 422 model (``HTTPValidationError``, ``{"detail": [...]}``) is replaced: the
exception handlers never answer in that shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

DESCRIPTIONS = {
    400: "The request body could not be read (it is not UTF-8 JSON).",
    401: "Missing or unknown token: send 'Authorization: Bearer <token>'.",
    403: "The token's role may not do this.",
    404: "No such project, record, model version or user.",
    409: "The current state does not allow it (it exists already, no production model, ...).",
    413: "The request body is over the size limit (LOOPLAB_UPLOAD_MAX_BYTES for an upload).",
    415: "The request body is not JSON: send 'Content-Type: application/json'.",
    422: "Invalid input; details name the field or value.",
    503: "A model file or the prediction log is unavailable; retry later.",
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. not_found, gate_failed.")
    message: str = Field(description="What was wrong and how to fix it.")
    details: dict[str, Any] = Field(description="File, line, field, value: whatever helps.")


class ErrorOut(BaseModel):
    """The one shape of every error answer: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer more than the rule declares."""
    return {status: {"model": ErrorOut, "description": DESCRIPTIONS[status]} for status in statuses}


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare every operation's error answers (see the module's table)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _declare(generate())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def statuses(operation: dict[str, Any]) -> list[int]:
    """The error statuses the rule gives one OpenAPI operation."""
    path_params = any(p.get("in") == "path" for p in operation.get("parameters", []))
    body = "requestBody" in operation
    json_body = "application/json" in operation.get("requestBody", {}).get("content", {})
    out = []
    if json_body:
        out += [400, 415]
    if operation.get("security"):
        out += [401, 403]
    if path_params:
        out.append(404)
    if path_params or body:
        out.append(409)
    if body or operation.get("parameters"):
        out.append(422)
    return sorted(out)


def _declare(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorOut"] = error_schema
    ref = {"$ref": "#/components/schemas/ErrorOut"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in statuses(operation):
                declared = responses.get(str(status))
                if declared is None or "HTTPValidationError" in repr(declared):
                    responses[str(status)] = {
                        "description": DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": ref}},
                    }
            operation["responses"] = dict(sorted(responses.items()))
    if "HTTPValidationError" not in repr(schema.get("paths")):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
