"""Per-request OpenFeature evaluation context (optional).

Add ``"dualwrite_django.middleware.EvaluationContextMiddleware"`` to ``MIDDLEWARE`` (after
``AuthenticationMiddleware`` if the targeting key is the user). Every query of the request
is then evaluated with the request's context and sees one stage per migration, so a
provider can roll ``live`` reads out to a share of users.

The context comes from ``DUALWRITE["CONTEXT_BUILDER"]`` (``fn(request)`` returning an
``EvaluationContext`` or a dict), else: targeting key = the authenticated user's pk, else
the session key, else the client address; attributes ``path`` and ``method``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from openfeature.evaluation_context import EvaluationContext

from dualwrite_django.registry import get_registry
from dualwrite_django.runtime import context_of, evaluation_scope

__all__ = ["EvaluationContextMiddleware", "default_context"]


def default_context(request: Any) -> EvaluationContext:
    """The evaluation context of a request when no CONTEXT_BUILDER is set."""
    key: str | None = None
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        key = str(user.pk)
    elif getattr(request, "session", None) is not None and request.session.session_key:
        key = request.session.session_key
    else:
        key = request.META.get("REMOTE_ADDR")
    return EvaluationContext(targeting_key=key,
                             attributes={"path": request.path, "method": request.method})


def _context(request: Any) -> EvaluationContext | None:
    registry = get_registry()
    builder = registry.settings.context_builder if registry is not None else None
    return context_of((builder or default_context)(request))


class EvaluationContextMiddleware:
    """Evaluate dualwrite stages with the request's context (sync and async)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self.__acall__(request)
        with evaluation_scope(_context(request)):
            return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        with evaluation_scope(_context(request)):
            response: Awaitable[Any] = self.get_response(request)
            return await response
