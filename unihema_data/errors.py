"""Input errors shared by the format parsers (:mod:`unihema_data.formats`), the disk-walking layer
and the adapters. They live here, below both, so that nothing in ``formats`` imports from
``adapters`` (the arrow points down). :mod:`unihema_data.adapters.base` re-exports them.

Every message names the file and what is wrong with it.
"""
from __future__ import annotations


class AdapterError(Exception):
    """Bad or missing native input. The message names the file and what is wrong."""


class MissingInputError(AdapterError):
    """The native layout was not found or required files are missing."""


class CorruptInputError(AdapterError):
    """A native file exists but cannot be parsed."""


__all__ = ["AdapterError", "MissingInputError", "CorruptInputError"]
