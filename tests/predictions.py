"""One row of the prediction log, as ``predlog.append`` takes it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any


def prediction_row(
    project_id: int, x: int, created_at: dt.datetime, *, pid: str | None = None
) -> dict[str, Any]:
    """A confident "a" of v1 on input ``{"x": x}``; its id is ``pid`` or a fresh one."""
    return {
        "id": uuid.uuid4().hex if pid is None else pid,
        "project_id": project_id,
        "model_version": 1,
        "input": {"x": x},
        "label": "a",
        "confidence": 0.9,
        "proba": {"a": 0.9, "b": 0.1},
        "latency_ms": 1.0,
        "created_at": created_at,
    }
