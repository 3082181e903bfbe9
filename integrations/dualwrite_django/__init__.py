"""dualwrite for Django: the app to put in ``INSTALLED_APPS``.

Not implemented yet in this version; the package exists so the import path is stable.
"""

__all__: list[str] = []
