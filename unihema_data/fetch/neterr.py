"""A short, safe description of why a network request failed.

``requests`` wraps the real cause (refused connection, DNS failure, timeout, TLS verification...)
in several layers (``ConnectionError`` -> urllib3 ``MaxRetryError`` -> ``NewConnectionError`` ->
``ConnectionRefusedError``). :func:`network_cause` digs out the innermost operating-system or TLS
reason, e.g. ``ConnectionError: Connection refused``. URLs are never part of the text (a signed URL's
query string can carry a token): only the exception class and the OS / TLS message are used.
"""
from __future__ import annotations

import socket
import ssl


def _chain(e: BaseException):
    seen: set[int] = set()
    todo = [e]
    while todo:
        x = todo.pop(0)
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        todo += [getattr(x, "reason", None), x.__cause__, x.__context__]
        todo += [a for a in getattr(x, "args", ()) if isinstance(a, BaseException)]


def network_cause(e: BaseException) -> str:
    """``"<OuterClass>: <innermost reason>"``, or just the class name when no reason is found."""
    reason = ""
    for x in _chain(e):
        if isinstance(x, ssl.SSLCertVerificationError):
            reason = f"TLS certificate verification failed ({x.verify_message})"
        elif isinstance(x, socket.gaierror):
            reason = f"cannot resolve the host name ({x.strerror or x})"
        elif isinstance(x, (socket.timeout, TimeoutError)) or "Timeout" in type(x).__name__:
            reason = "timed out"
        elif isinstance(x, OSError) and x.strerror:
            reason = x.strerror
        elif isinstance(x, ssl.SSLError):
            reason = f"TLS error ({x.reason or type(x).__name__})"
    return f"{type(e).__name__}: {reason}" if reason else type(e).__name__
