"""Domain errors, raised by services and mapped to HTTP in one place (``looplab.api.errors``).

Every error carries a stable ``code``, a human ``message`` saying what was wrong and how to fix it,
and optional ``details`` (file, line, field, ...). Over HTTP the shape is always::

    {"error": {"code": "...", "message": "...", "details": {...}}}

The tree::

    LooplabError
    ├── Invalid        422  bad input (file, field, value)
    ├── NotFound       404  no such project, record, user, ...
    ├── Conflict       409  already exists, state does not allow it
    ├── Unauthorized   401  missing or unknown token
    ├── Forbidden      403  the token's role may not do this
    └── Unavailable    503  a dependency (the store) is away; retry later
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar


class LooplabError(Exception):
    """Base of every error looplab raises on purpose."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "error"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class Invalid(LooplabError):
    status = 422
    default_code = "invalid"


class NotFound(LooplabError):
    status = 404
    default_code = "not_found"


class Conflict(LooplabError):
    status = 409
    default_code = "conflict"


class Unauthorized(LooplabError):
    status = 401
    default_code = "unauthorized"


class Forbidden(LooplabError):
    status = 403
    default_code = "forbidden"


class Unavailable(LooplabError):
    status = 503
    default_code = "unavailable"


def did_you_mean(word: str, choices: Iterable[str], what: str = "") -> str:
    """A hint to append to a "not found" message: the closest names, else the ones there are.

    Examples
    --------
    >>> did_you_mean("nwes", ["news", "loans"])
    "; did you mean 'news'?"
    >>> did_you_mean("x", ["news", "loans"], "projects")
    '; projects: news, loans'
    >>> did_you_mean("x", [])
    ''
    """
    names = [c for c in dict.fromkeys(choices) if c]
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.6)
    if not close:  # a case slip (Topic for topic) is far by ratio but obvious to a reader
        close = [c for c in names if c.lower() == word.lower()]
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if what and names:
        shown = names[:20]
        return f"; {what}: {', '.join(shown)}" + (" ..." if len(names) > 20 else "")
    return ""
