"""UniHema data toolkit: catalog, taxonomy, adapters, conversion, validation and CLI."""
from .schema import FEATURES, SCHEMA_VERSION

__version__ = "0.1.0"
__all__ = ["FEATURES", "SCHEMA_VERSION", "__version__"]
