"""Map every error to the one JSON shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from looplab.errors import LooplabError

log = logging.getLogger("looplab.api")


def _body(code: str, message: str, details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


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
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            _body("internal", "internal server error; the server log has the details"),
            status_code=500,
        )
