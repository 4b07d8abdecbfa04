"""Map every error to the one JSON shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from looplab.core.errors import LooplabError

log = logging.getLogger("looplab.api")


def _body(code: str, message: str, details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _allowed_methods(request: Request) -> str:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.PARTIAL:  # the path matches, the method does not
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(LooplabError)
    async def _domain(_: Request, exc: LooplabError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        is_json = media == "application/json" or media.endswith("+json")  # as FastAPI reads it
        about_body = any(err.get("loc", ("",))[0] == "body" for err in exc.errors())
        if about_body and not is_json:
            # FastAPI reads a non-JSON body as a string and then says it is "not a valid
            # dictionary", which hides the real mistake (curl -d sends a form content type).
            return JSONResponse(
                _body(
                    "invalid",
                    f"the request body must be JSON: send 'Content-Type: application/json'"
                    f" (got {media or 'no content type'!r})",
                    {"field": "content-type"},
                ),
                status_code=415 if media else 422,
            )
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems)
        return JSONResponse(
            _body("invalid", f"invalid request: {summary}", {"problems": problems}),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI raises 400 for a body it cannot decode at all (not UTF-8), before validation.
        code = {400: "invalid", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110: list every method of the path. Starlette names only those of the first
            # route on it, and FastAPI makes one route per method.
            headers["Allow"] = _allowed_methods(request)
        return JSONResponse(
            _body(code, str(exc.detail)), status_code=exc.status_code, headers=headers or None
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            _body("internal", "internal server error; the server log has the details"),
            status_code=500,
        )
