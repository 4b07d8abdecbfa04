"""Dependencies as ``Annotated`` aliases, so a route reads as a plain signature."""

from __future__ import annotations

import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import User
from looplab.govern import access
from looplab.serve.batching import Batcher
from looplab.serve.predlog import PredictionLog
from looplab.serve.serving import ModelCache

_bearer = HTTPBearer(auto_error=False, description="A token from `looplab user add`.")


# The getters are ``async def``: FastAPI runs a plain ``def`` dependency in its threadpool, a
# hop of about 1 ms per dependency per request, which is most of a cached prediction's cost.
async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_models(request: Request) -> ModelCache:
    models: ModelCache = request.app.state.models
    return models


async def get_prediction_log(request: Request) -> PredictionLog:
    prediction_log: PredictionLog = request.app.state.prediction_log
    return prediction_log


async def get_batcher(request: Request) -> Batcher:
    batcher: Batcher = request.app.state.batcher
    return batcher


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ModelCache, Depends(get_models)]
PredictionLogDep = Annotated[PredictionLog, Depends(get_prediction_log)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]


class TokenCache:
    """Token hash -> user, for a few seconds: a revoked token stops working within ``ttl``.

    Without it every request would pay a store round trip before doing any work.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._users: dict[str, tuple[User, float]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> User | None:
        hit = self._users.get(token_hash)
        if hit is None or time.monotonic() - hit[1] > self.ttl:
            return None
        return hit[0]

    def put(self, token_hash: str, user: User) -> None:
        with self._lock:
            if len(self._users) > 10_000:
                self._users.clear()
            self._users[token_hash] = (user, time.monotonic())


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    token = credentials.credentials if credentials else None
    cache: TokenCache = request.app.state.token_cache
    if token:
        user = cache.get(access.hash_token(token))
        if user is not None:
            return user
    store: Store = request.app.state.store

    def lookup() -> User:
        with store.read() as session:
            return access.authenticate(session, token)

    user = await run_in_threadpool(lookup)
    if token:
        cache.put(access.hash_token(token), user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def existing_project(name: str, user: CurrentUser, store: StoreDep) -> str:
    """The path's project name, once the project is known to exist (404 ``not_found`` if not).

    For handlers that call a service taking the store and a name, which opens its own
    transactions (promotion, rollback, drift, import): the handler still answers 404 before it
    authorizes. Depends on the user so a request without a token gets its 401 first.
    """
    with store.read() as session:
        projects.get_project(session, name)
    return name


ProjectName = Annotated[str, Depends(existing_project)]
