"""Import (an upload that runs as a job) and export (a streamed download) of a project's records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from looplab.api.deps import CurrentUser, ProjectName, SettingsDep, StoreDep
from looplab.api.responses import errors
from looplab.api.schemas import JobOut
from looplab.collect import export as exporter
from looplab.collect import imports
from looplab.collect.readers import FORMATS
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import User
from looplab.govern import access

router = APIRouter(prefix="/api/v1/projects", tags=["import and export"])

_MEDIA = {
    "jsonl": ("application/x-ndjson", "jsonl"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "label-studio": ("application/json", "label-studio.json"),
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes, as sent (CSV, JSONL, Parquet or Label Studio JSON).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _columns(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()] or None


async def receive_upload(request: Request, path: Path, limit: int) -> int:
    """Write the request body to ``path``; refuse it past ``limit`` bytes. Returns its size."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise imports.TooLarge(
            f"the file is {int(declared):,} bytes; the limit is {limit:,}"
            " (LOOPLAB_UPLOAD_MAX_BYTES)",
            details={"limit": limit},
        )
    size = 0
    with path.open("wb") as handle:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise imports.TooLarge(
                    f"the file is over the limit of {limit:,} bytes (LOOPLAB_UPLOAD_MAX_BYTES)",
                    details={"limit": limit},
                )
            handle.write(chunk)
    return size


@router.post(
    "/{name}/imports",
    response_model=JobOut,
    status_code=202,
    openapi_extra=_UPLOAD_BODY,
    responses=errors(413),
)
async def upload(
    name: ProjectName,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    filename: Annotated[
        str,
        Query(
            min_length=1,
            max_length=255,
            description="The file's name; its extension gives the format unless `format` is set.",
        ),
    ],
    fmt: Annotated[
        str | None,
        Query(
            alias="format",
            description="csv, jsonl, parquet or label-studio.",
            json_schema_extra={"enum": list(FORMATS)},  # checked by the reader, with its message
        ),
    ] = None,
    text: Annotated[str | None, Query(description="Column holding the text (text tasks).")] = None,
    fields: Annotated[
        str | None, Query(description="Input columns, comma-separated (tabular).")
    ] = None,
    label: Annotated[str | None, Query(description="Column of known labels.")] = None,
    meta: Annotated[
        str | None, Query(description="Columns kept as metadata, comma-separated.")
    ] = None,
    id_column: Annotated[
        str | None,
        Query(
            alias="id",
            description="Column naming each row's record: same id = same record, different ids "
            "stay apart (as `looplab import --id`).",
        ),
    ] = None,
    encoding: Annotated[str, Query(max_length=40)] = "utf-8",
    from_name: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Label Studio: the control whose answers to import (default: the only"
            " Choices control).",
        ),
    ] = None,
) -> JobOut:
    """Upload a file and queue its import, all or nothing, as `looplab import` does (202).

    Send the file as the request body; poll `GET /api/v1/jobs/{id}` for progress and the result.
    """
    access.authorize(user, "project.import")
    path = imports.upload_path(settings, filename)
    try:
        size = await receive_upload(request, path, settings.upload_max_bytes)
        if size == 0:  # the schema marks the body required: nothing to import is a 422 here
            raise Invalid(
                "the request body is empty: send the file's bytes as the body",
                details={"field": "body"},
            )
        return await run_in_threadpool(
            _queue,
            store,
            settings,
            name,
            path,
            size,
            user,
            dict(
                fmt=fmt,
                text=text,
                fields=_columns(fields),
                label=label,
                meta=_columns(meta),
                id_column=id_column,
                encoding=encoding,
                from_name=from_name,
            ),
        )
    except BaseException:
        imports.discard(path)
        raise


def _queue(
    store: Store,
    settings: Settings,
    name: str,
    path: Path,
    size: int,
    user: User,
    mapping: dict[str, Any],
) -> JobOut:
    with store.write() as session:
        project = projects.get_project(session, name)
        job = imports.queue_import(
            session, project, path, settings=settings, size=size, actor=user.name, **mapping
        )
        return JobOut(**imports.view(store, job, project.name))


@router.get(
    "/{name}/export",
    responses={200: {"content": {m: {} for m, _ in _MEDIA.values()}}},
    response_class=StreamingResponse,
)
def export(
    name: str,
    user: CurrentUser,
    store: StoreDep,
    fmt: Annotated[
        str,
        Query(
            alias="format",
            description="jsonl, csv, parquet or label-studio.",
            json_schema_extra={"enum": list(_MEDIA)},  # checked below, with its message
        ),
    ] = "jsonl",
) -> StreamingResponse:
    """Every record with its labels and provenance, as `looplab export` writes it (streamed)."""
    if fmt not in _MEDIA:
        raise Invalid(
            f"unknown export format {fmt!r}; valid: {', '.join(_MEDIA)}",
            details={"field": "format"},
        )
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.export")
        project_id = project.id
    media, suffix = _MEDIA[fmt]
    body: Iterator[bytes] = exporter.stream(store, project_id, fmt)
    # Project names are [a-z0-9_-]: safe inside the quoted file name.
    headers = {"Content-Disposition": f'attachment; filename="{name}.{suffix}"'}
    return StreamingResponse(body, media_type=media, headers=headers)
