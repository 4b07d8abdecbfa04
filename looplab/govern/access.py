"""Users, tokens and the one policy table that says which role may do what.

Tokens are 256 random bits shown once; the store keeps only their SHA-256. A fast hash is right
here (as for GitHub or Stripe keys): with that much entropy there is nothing to brute-force, and a
slow hash would cost every API request a few hundred milliseconds.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from looplab.core import audit
from looplab.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from looplab.core.tables import ROLES, User

TOKEN_PREFIX = "ll_"
# fullmatch, never match with "$": "$" also matches before a trailing newline ("bob\n").
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")
_RANK = {role: rank for rank, role in enumerate(ROLES)}

#: The least role each action needs. Every check in the server goes through :func:`authorize`.
POLICY: dict[str, str] = {
    "project.read": "annotator",
    "queue.next": "annotator",
    "annotation.create": "annotator",
    "prediction.create": "annotator",
    "feedback.create": "annotator",
    "annotation.review": "reviewer",
    # Trust: agreement and per-person evidence, gold files, quarantine decisions.
    "trust.read": "reviewer",
    "gold.import": "reviewer",
    "annotator.decide": "reviewer",
    # The label-error scan: reviewers queue it, then work the queue it fills.
    "labels.scan": "reviewer",
    # Below reviewer, a person reads only the records handed to them (see records.readable).
    "record.read": "reviewer",
    "project.export": "reviewer",
    "model.read": "reviewer",
    "project.create": "admin",
    "project.import": "admin",
    "project.update": "admin",
    "model.manage": "admin",
    "user.manage": "admin",
    "job.read": "admin",
    "audit.read": "admin",
}


#: What each action lets a person do, in the words of a refusal ("... may not read models").
ACTION_WORDS: dict[str, str] = {
    "project.read": "read projects",
    "queue.next": "take records to label",
    "annotation.create": "label records",
    "prediction.create": "ask for predictions",
    "feedback.create": "send feedback",
    "annotation.review": "review annotations",
    "labels.scan": "scan labels for errors",
    "trust.read": "read agreement and annotator evidence",
    "gold.import": "import gold records",
    "annotator.decide": "quarantine or release annotators",
    "record.read": "read records that were not handed to them",
    "project.export": "export projects",
    "model.read": "read models",
    "project.create": "create projects",
    "project.import": "import records",
    "project.update": "change project settings",
    "model.manage": "train, promote or roll back models",
    "user.manage": "manage users",
    "job.read": "read jobs",
    "audit.read": "read the audit log",
}


def refusal(role: str, action: str, needed: str) -> str:
    """A refusal a person reads: "an annotator may not read models: that needs the reviewer
    role or above; ask an admin"."""
    noun, _, verb = action.partition(".")
    words = ACTION_WORDS.get(action) or f"{verb or 'use'} {noun}s"
    article = "an" if role[:1] in "aeiou" else "a"
    above = "" if needed == ROLES[-1] else " or above"
    return f"{article} {role} may not {words}: that needs the {needed} role{above}; ask an admin"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def allowed(user: User, action: str) -> bool:
    """Whether ``user``'s role may do ``action`` (see :data:`POLICY`)."""
    return _RANK[user.role] >= _RANK[POLICY[action]]


def authorize(user: User, action: str) -> None:
    """Raise :class:`Forbidden` unless ``user``'s role may do ``action``."""
    needed = POLICY[action]
    if not allowed(user, action):
        raise Forbidden(
            refusal(user.role, action, needed),
            details={"action": action, "role": user.role, "needs": needed},
        )


def authenticate(session: Session, token: str | None) -> User:
    if not token:
        raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
    user = session.scalar(select(User).where(User.token_hash == hash_token(token)))
    if user is None or not user.active:
        raise Unauthorized("unknown or revoked token")
    return user


def create_user(session: Session, name: str, role: str, *, actor: str) -> tuple[User, str]:
    """Create a user; return it with its token, which is never stored or shown again."""
    if not _NAME.fullmatch(name):
        raise Invalid(
            f"invalid user name {name!r}: use letters, digits, '_', '.', '@' or '-' (max 100)",
            details={"field": "name"},
        )
    if role not in ROLES:
        raise Invalid(
            f"unknown role {role!r}; valid roles: {', '.join(ROLES)}", details={"field": "role"}
        )
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists", details={"name": name})
    token = new_token()
    user = User(name=name, role=role, token_hash=hash_token(token))
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        details={"name": name, "role": role},
    )
    return user, token


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}", details={"name": name})
    return user


def rotate_token(session: Session, name: str, *, actor: str) -> str:
    user = get_user(session, name)
    token = new_token()
    user.token_hash = hash_token(token)
    user.active = True
    audit.record(
        session,
        actor=actor,
        action="user.rotate_token",
        entity_type="user",
        entity_id=user.id,
        details={"name": name},
    )
    return token


def revoke(session: Session, name: str, *, actor: str) -> None:
    """Disable ``name``'s token (a new one from :func:`rotate_token` enables the user again).

    The last active admin cannot be disabled: nobody could manage users over HTTP after it.
    """
    user = get_user(session, name)
    if user.role == "admin" and user.active:
        admins = session.scalar(
            select(func.count()).where(User.role == "admin", User.active.is_(True))
        )
        if (admins or 0) <= 1:
            raise Conflict(
                f"{name!r} is the last active admin; make another admin first",
                details={"name": name},
            )
    user.active = False
    audit.record(
        session,
        actor=actor,
        action="user.revoke",
        entity_type="user",
        entity_id=user.id,
        details={"name": name},
    )


#: Loose on purpose: an e-mail only has to name the same person in Label Studio and here.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def set_email(session: Session, name: str, email: str | None, *, actor: str) -> User:
    """Set (or, with None, clear) a user's e-mail: how Label Studio answers find them, both ways."""
    user = get_user(session, name)
    if email is not None:
        email = email.strip()
        if len(email) > 254 or not _EMAIL.fullmatch(email):
            raise Invalid(f"not an e-mail address: {email!r}", details={"field": "email"})
        other = session.scalar(
            select(User.name).where(func.lower(User.email) == email.lower(), User.id != user.id)
        )
        if other is not None:
            raise Conflict(
                f"the e-mail {email!r} belongs to user {other!r}", details={"email": email}
            )
    user.email = email
    audit.record(
        session,
        actor=actor,
        action="user.set_email",
        entity_type="user",
        entity_id=user.id,
        details={"name": name, "email": email},
    )
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))
