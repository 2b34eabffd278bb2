"""The function registry: which functions exist, their specs and bundle digests."""

from mlambda.registry.model import LATEST, FunctionRecord
from mlambda.registry.registry import Registry

__all__ = ["LATEST", "FunctionRecord", "Registry"]
