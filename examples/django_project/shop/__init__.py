"""The example shop: customers whose ``name`` column becomes ``full_name``."""
