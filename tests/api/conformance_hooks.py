"""Schemathesis hooks for ``test_openapi_conformance.py``, loaded through ``SCHEMATHESIS_HOOKS``.

The run authenticates as one admin. Disabling that admin or replacing its token, which the user
routes allow, would turn every later call into a 401 and end the run's usefulness: such calls are
pointed at a spare admin instead, so the routes still do their work.

A prediction id belongs to the project that served it. The stateful phase may send one as
feedback to a project it has just created; the 404 that names the prediction (not the project)
is right, and not the "created resource not found" that ``ensure_resource_availability`` reads.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

ADMIN = os.environ.get("LOOPLAB_CONFORMANCE_ADMIN", "")
SPARE = os.environ.get("LOOPLAB_CONFORMANCE_SPARE", "")


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    params = case.path_parameters
    if ADMIN and params and params.get("name") == ADMIN and "/users/" in case.operation.path:
        params["name"] = SPARE


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    if getattr(failure, "code", "") != "ST302" or not case.operation.path.endswith("/feedback"):
        return True
    try:
        details = json.loads(response.content)["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return True
    return "prediction_id" not in details
