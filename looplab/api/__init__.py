"""The HTTP API: an app factory, thin route handlers, pydantic schemas at the edge."""

from looplab.api.app import create_app

__all__ = ["create_app"]
