"""Projects: create, read, settings, column types, status, records."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import ConfigDict, Field

from looplab import configure
from looplab.api.deps import CurrentUser, SettingsDep, StoreDep
from looplab.api.schemas import (
    MAX_ID,
    Page,
    ProjectIn,
    ProjectOut,
    RecordOut,
    Request,
    SettingsPatch,
)
from looplab.ask import gold, queue
from looplab.core import projects
from looplab.core.errors import NotFound
from looplab.govern import access

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("", response_model=list[ProjectOut])
def list_projects(user: CurrentUser, store: StoreDep) -> list[ProjectOut]:
    access.authorize(user, "project.read")
    with store.read() as session:
        return [ProjectOut.model_validate(p) for p in projects.list_projects(session)]


@router.post("", response_model=ProjectOut, status_code=201)
def create_project(body: ProjectIn, user: CurrentUser, store: StoreDep) -> ProjectOut:
    access.authorize(user, "project.create")
    with store.write() as session:
        project = projects.create_project(
            session,
            body.name,
            task=body.task,
            labels=body.labels,
            fields=body.fields,
            guidelines=body.guidelines,
            actor=user.name,
        )
        return ProjectOut.model_validate(project)


@router.get("/{name}", response_model=ProjectOut)
def get_project(name: str, user: CurrentUser, store: StoreDep) -> ProjectOut:
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.read")
        return ProjectOut.model_validate(project)


@router.patch("/{name}/settings", response_model=ProjectOut)
def update_settings(
    name: str, body: SettingsPatch, user: CurrentUser, store: StoreDep
) -> ProjectOut:
    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.update")
        changes = body.model_dump(exclude_unset=True)
        project = configure.update_settings(session, project, changes, actor=user.name)
        return ProjectOut.model_validate(project)


ColumnType = Literal["numeric", "categorical", "boolean", "date", "text", "identifier"]


class TypesPatch(Request):
    """Column type overrides, as `looplab schema PROJECT field=type ...`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    types: dict[str, ColumnType] = Field(
        default_factory=dict,
        max_length=10_000,
        description="field -> its type; the field must be one of the project's",
    )
    infer: bool = Field(False, description="Infer every type again from the records first.")


def _types_out(project_name: str, schema: Any) -> dict[str, Any]:
    return {"project": project_name, **schema.to_dict(), "warnings": schema.warnings(project_name)}


@router.get("/{name}/schema")
def get_types(name: str, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    """The column types training and serving read (`looplab schema PROJECT`)."""
    from looplab.collect import schema

    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.read")
        current = schema.of_project(project)
        if current is None:
            raise NotFound(
                f"project {name!r} has no column types yet: import a file first",
                details={"project": name},
            )
        return _types_out(project.name, current)


@router.patch("/{name}/schema")
def update_types(name: str, body: TypesPatch, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    """Override column types before the next training, audited (`project.set_types`)."""
    from looplab.collect import schema

    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.update")
        changed = schema.set_types(
            session, project, body.types, actor=user.name, infer_again=body.infer
        )
        return _types_out(project.name, changed)


@router.get("/{name}/status")
def status(name: str, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.read")
        return projects.status(session, project)


@router.get("/{name}/records", response_model=Page[RecordOut])
def list_records(
    name: str,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_ID, description="Return records with id above this.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ID)] = 50,
) -> Page[RecordOut]:
    limit = min(limit, settings.page_size_max)
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.export")
        rows = projects.records_after(session, project, after, limit)
    items = [RecordOut.model_validate(r) for r in rows]
    return Page(items=items, next_after=items[-1].id if len(items) == limit else None)


@router.get("/{name}/records/{record_id}", response_model=RecordOut)
def get_record(
    name: str, record_id: Annotated[int, Path(ge=0, le=MAX_ID)], user: CurrentUser, store: StoreDep
) -> RecordOut:
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.read")
        record = projects.get_record(session, project, record_id)
        if access.allowed(user, "record.read"):
            return RecordOut.model_validate(record)
        if not queue.handed_to(session, user, record.id):
            access.authorize(user, "record.read")  # says who may, in words
        # An annotator sees a record as it was handed to them: a gold one like any other.
        return RecordOut(**gold.as_handed(session, record))
