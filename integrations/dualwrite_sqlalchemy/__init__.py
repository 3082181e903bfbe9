"""dualwrite for SQLAlchemy 2.x: session events that mirror writes and route reads.

Not implemented yet in this version; the package exists so the import path is stable.
"""

__all__: list[str] = []
