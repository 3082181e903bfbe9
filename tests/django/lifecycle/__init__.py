"""The Django application of the lifecycle harness (tests/django/test_lifecycle.py): a model
of the harness's table, which it creates and migrates itself (no Django migrations)."""
