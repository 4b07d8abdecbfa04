"""``looplab user ...`` and ``looplab audit verify``: people, tokens and the audit log."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from looplab.cli.app import (
    JsonOpt,
    actor,
    audit_app,
    emit_json,
    err,
    opened,
    out,
    user_app,
)
from looplab.core import audit
from looplab.govern import access


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="annotator, reviewer or admin")] = "annotator",
    as_json: JsonOpt = False,
) -> None:
    """Create a user and print their token once (only its hash is stored)."""
    with opened() as store, store.write() as session:
        user, token = access.create_user(session, name, role, actor=actor())
    if as_json:
        emit_json({"name": user.name, "role": user.role, "token": token})
    else:
        err.print(f"created {user.role} [bold]{user.name}[/]; token (shown once):")
        sys.stdout.write(token + "\n")


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """List users and roles."""
    with opened() as store, store.read() as session:
        users = [
            {
                "name": u.name,
                "role": u.role,
                "active": u.active,
                "email": u.email,
                "created_at": u.created_at,
            }
            for u in access.list_users(session)
        ]
    if as_json:
        emit_json(users)
        return
    table = Table("name", "role", "active", "e-mail", "created")
    for u in users:
        table.add_row(
            str(u["name"]),
            str(u["role"]),
            str(u["active"]),
            str(u["email"] or ""),
            str(u["created_at"])[:19],
        )
    out.print(table)


@user_app.command("token")
def user_token(name: str) -> None:
    """Issue a new token for a user (the old one stops working)."""
    with opened() as store, store.write() as session:
        token = access.rotate_token(session, name, actor=actor())
    sys.stdout.write(token + "\n")


@user_app.command("email")
def user_email(
    name: str,
    email: Annotated[str, typer.Argument(help="The address; '' clears it.")],
) -> None:
    """Set a user's e-mail: Label Studio imports find annotators by it, exports name them by it."""
    with opened() as store, store.write() as session:
        access.set_email(session, name, email or None, actor=actor())
    out.print(f"{name}: e-mail {'set to ' + email if email else 'cleared'}")


@user_app.command("revoke")
def user_revoke(name: str) -> None:
    """Revoke a user's token."""
    with opened() as store, store.write() as session:
        access.revoke(session, name, actor=actor())
    out.print(f"revoked {name}")


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Prove the audit log was not edited: exit 0 if the chain holds, 1 if not."""
    with opened() as store, store.read() as session:
        result = audit.verify(session)
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        out.print(f"[green]ok[/]: {result.events:,} events, chain intact; head {result.head}")
    else:
        err.print(
            f"[bold red]TAMPERED[/]: event {result.first_bad_id}: {result.reason} "
            f"({result.events:,} events checked)"
        )
    raise typer.Exit(0 if result.ok else 1)
