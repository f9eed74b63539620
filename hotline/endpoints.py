"""Where the HTTP API listens, and whether it may listen there.

The API carries bearer tokens and callers' personal data (work orders), so off loopback it
must speak TLS: ``http.tls`` (a certificate and key, served with Twisted's SSL endpoint).
Behind a TLS-terminating proxy on the same host or a private network (nginx, HAProxy, an
ingress), the proxy speaks TLS to clients and plain HTTP to us: ``http.allow_plaintext:
true`` says so explicitly. Anything else is refused at start and by ``ivr check-config``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from twisted.internet.endpoints import quoteStringArgument

from api.channel import HTTPLimits
from ivr.config import HTTPListen

__all__ = ["http_endpoint", "http_exposure_problems", "http_limits", "is_loopback"]


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` and ``localhost``; an empty host or ``0.0.0.0`` (every
    interface) and any other name are not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_exposure_problems(http: HTTPListen, service_yaml: Path) -> list[str]:
    """What keeps the API from listening as configured (``service_yaml``: for the message)."""
    if http.tls is not None:
        return [
            f"{service_yaml}: http.tls.{key}: cannot read {path}"
            for key, path in (("cert_file", http.tls.cert_file), ("key_file", http.tls.key_file))
            if not Path(path).is_file()
        ]
    if is_loopback(http.host) or http.allow_plaintext:
        return []
    return [
        f"{service_yaml}: http.host: {http.host or '(every interface)'} is not a loopback "
        "address and http.tls is not set: the API would carry tokens and callers' data in "
        "clear. Set http.tls (cert_file, key_file), or http.host: 127.0.0.1, or, behind a "
        "TLS-terminating proxy on the same host or network, http.allow_plaintext: true"
    ]


def http_endpoint(http: HTTPListen) -> str:
    """The server endpoint description for ``serverFromString``: ``tcp:...`` or, with
    ``http.tls``, ``ssl:...`` with the certificate and key files."""
    interface = quoteStringArgument(http.host)
    if http.tls is None:
        return f"tcp:{http.port}:interface={interface}"
    return (
        f"ssl:{http.port}:interface={interface}"
        f":privateKey={quoteStringArgument(http.tls.key_file)}"
        f":certKey={quoteStringArgument(http.tls.cert_file)}"
    )


def http_limits(http: HTTPListen) -> HTTPLimits:
    """The bounds on each client that ``http`` sets (README "Hostile input")."""
    return HTTPLimits(
        max_connections=http.max_connections,
        header_timeout_s=http.header_timeout_s,
        idle_timeout_s=http.idle_timeout_s,
    )
