"""``unihema-data fetch``: bring each source dataset's raw files into ``ROOT/raw/<id>/``, safely.

Modules: :mod:`.download` (HTTP with resume/retry/verification), :mod:`.extract` (safe
extraction), :mod:`.resolvers` (host APIs), :mod:`.manual`, :mod:`.lock`, :mod:`.core`
(the ladder) and :mod:`.cli` (the typer command).
"""
from .core import Fetcher, SourceResult, StatusRow
from .download import Location, Target, download_file
from .errors import (FetchError, HTMLInsteadOfFileError, ManualDownloadRequired, PermanentHTTPError,
                     ResolveError, TransientHTTPError, UnsafeArchiveError, VerificationError)
from .extract import archive_kind, extract_archive
from .settings import FetchSettings

__all__ = ["Fetcher", "SourceResult", "StatusRow", "Location", "Target", "download_file", "FetchError",
           "HTMLInsteadOfFileError", "ManualDownloadRequired", "PermanentHTTPError", "ResolveError",
           "TransientHTTPError", "UnsafeArchiveError", "VerificationError", "archive_kind", "extract_archive",
           "FetchSettings"]
