"""The error every model family raises: a leaf module (no torch, no prh
import), so the registry, the interface and the families all import it
without importing one another."""


class ModelError(ValueError):
    """A model that cannot be found, loaded or run; the message says which and why."""
