"""Backends start instance processes; the pool knows them only through ``base.Backend``."""
