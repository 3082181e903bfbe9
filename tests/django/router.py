"""Routes every model to the database alias of the test being run."""

from __future__ import annotations

from typing import Any

ACTIVE = {"alias": "default"}


class ActiveAliasRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str:
        return ACTIVE["alias"]

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return ACTIVE["alias"]

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True
