"""Exceptions raised by ``unihema-data fetch``; every message is meant to be shown to the user as is."""
from __future__ import annotations


class FetchError(RuntimeError):
    """Base class: a source could not be fetched."""


class TransientHTTPError(FetchError):
    """A retryable failure: 5xx/429/408 answer, dropped connection, timeout, truncated body."""


class PermanentHTTPError(FetchError):
    """A non-retryable answer for this URL (404, 401/403 login walls, ...); mirrors are tried next."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class HTMLInsteadOfFileError(PermanentHTTPError):
    """The server sent an HTML page (login wall, error or interstitial) where a data file was expected."""


class VerificationError(FetchError):
    """Size or checksum of a finished download/manual file does not match the expected value."""


class UnsafeArchiveError(FetchError):
    """An archive member would land outside the target, is a device/link escaping it, or limits are hit."""


class ResolveError(FetchError):
    """A host API (Zenodo, Figshare, ...) could not be resolved to files."""


class ManualDownloadRequired(FetchError):
    """The source (or some of its files) must be downloaded by the user; ``instructions`` says how."""

    def __init__(self, message: str, instructions: str = ""):
        super().__init__(message)
        self.instructions = instructions
