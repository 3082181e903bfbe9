"""dualwrite for Django: add ``"dualwrite_django"`` to ``INSTALLED_APPS`` and configure
``settings.DUALWRITE``. See docs/django.md.

Public helpers (importable before the app registry is ready):

* :func:`evaluation_context` -- evaluate stages with an OpenFeature context in a block
  (what the middleware does per request);
* :func:`stage` -- the stage served for a migration on a database alias;
* :func:`refresh` -- forget cached stages (after a change you want to see at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dualwrite.stages import Stage

__all__ = ["evaluation_context", "refresh", "stage"]


@contextmanager
def evaluation_context(context: Any) -> Iterator[None]:
    """Evaluate dualwrite stages with ``context`` (an ``EvaluationContext`` or a dict with
    ``targeting_key`` and attributes) inside the block."""
    from dualwrite_django.runtime import context_of, evaluation_scope

    with evaluation_scope(context_of(context)):
        yield


def _registry() -> Any:
    from dualwrite_django.registry import get_registry

    registry = get_registry()
    if registry is None:
        from dualwrite.errors import ConfigurationError

        raise ConfigurationError("dualwrite_django is not set up",
                                 hint="add 'dualwrite_django' to INSTALLED_APPS")
    return registry


def stage(key: str, using: str = "default") -> Stage:
    """The stage this process serves for migration ``key`` on database ``using``."""
    result: Stage = _registry().runtimes.stage(using, key)
    return result


def refresh() -> None:
    """Forget every cached stage: the next query reads the state table again."""
    _registry().runtimes.invalidate()
