"""The request's OpenFeature evaluation context, as seen by the adapter.

Set it once per request (a middleware, a task wrapper) so a flag provider can roll reads
out by percentage of users::

    with dualwrite_sqlalchemy.evaluation_context("user-42", plan="pro"):
        session.scalars(select(User)).all()

It is a :mod:`contextvars` variable: threads and asyncio tasks each see their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from openfeature.evaluation_context import EvaluationContext

__all__ = ["current_evaluation_context", "evaluation_context", "reset_evaluation_context",
           "set_evaluation_context"]

_CONTEXT: ContextVar[EvaluationContext | None] = ContextVar("dualwrite_evaluation_context",
                                                            default=None)


def current_evaluation_context() -> EvaluationContext | None:
    """The evaluation context of the running request, or ``None``."""
    return _CONTEXT.get()


def set_evaluation_context(context: EvaluationContext | str | None, **attributes: Any
                           ) -> Token[EvaluationContext | None]:
    """Set the request's evaluation context (an ``EvaluationContext`` or a targeting key
    plus attributes); returns the token for :func:`reset_evaluation_context`."""
    if isinstance(context, EvaluationContext):
        if attributes:
            context = EvaluationContext(context.targeting_key,
                                        {**context.attributes, **attributes})
    elif context is not None or attributes:
        context = EvaluationContext(context, attributes)
    return _CONTEXT.set(context)


def reset_evaluation_context(token: Token[EvaluationContext | None]) -> None:
    """Restore the context that was current before :func:`set_evaluation_context`."""
    _CONTEXT.reset(token)


@contextmanager
def evaluation_context(context: EvaluationContext | str | None, **attributes: Any
                       ) -> Iterator[EvaluationContext | None]:
    """Use ``context`` (or a targeting key plus attributes) for flag evaluations inside."""
    token = set_evaluation_context(context, **attributes)
    try:
        yield _CONTEXT.get()
    finally:
        _CONTEXT.reset(token)
