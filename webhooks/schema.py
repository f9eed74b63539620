"""Schema of ``config/webhooks.yaml``: where work-order events are POSTed, and how hard we try.

Validated once at load (``ivr.config`` includes it as the ``webhooks`` section, optional: no
file means no webhooks), every problem a ``file: key: reason`` line. The signing secret is
never in the file: it names an environment variable (``secret_env``) or a file
(``secret_file``); whether that secret is there is checked at start and by
``ivr check-config`` (:func:`secret_problems`), where the service's environment is known.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # Standard Webhooks: 24 to 64 bytes
MAX_SECRET_BYTES = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KIND_PATTERN = re.compile(r"^[A-Z0-9*?]+$")
NEW_SECRET_HINT = (
    "make one with: python3 -c \"import base64, os; "
    "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
)


class WebhookSecretError(ValueError):
    """The signing secret is missing or malformed; the message says where it was looked for."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrySettings(_Section):
    """Attempts of one delivery: the first, then waits of ``initial_s`` times ``multiplier``
    per attempt, capped at ``max_s``, each drawn at random between half and all of it."""

    attempts: int = Field(10, ge=1, le=100)  # in all, the first one included
    initial_s: float = Field(2.0, gt=0)
    max_s: float = Field(300.0, gt=0)
    multiplier: float = Field(2.0, ge=1)

    @model_validator(mode="after")
    def _initial_below_max(self) -> RetrySettings:
        if self.initial_s > self.max_s:
            raise ValueError(f"initial_s={self.initial_s:g} is above max_s={self.max_s:g}")
        return self


class WebhookSettings(_Section):
    """One receiver: its URL, the secret's location, the event kinds it gets."""

    url: str
    # Plain http off loopback only with this: the events leave the host unencrypted.
    allow_plaintext: bool = False
    secret_env: str | None = None
    secret_file: str | None = None
    # Event kinds delivered, as shell patterns on the upper-case names ("WO*", "CONNECT").
    kinds: list[str] = Field(default_factory=lambda: ["WO*"], min_length=1)
    timeout_s: float = Field(10.0, gt=0, le=300)
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="before")
    @classmethod
    def _no_secret_here(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "secret" in data:
            raise ValueError(
                "secret: the signing secret is never written in the config; name an "
                "environment variable (secret_env) or a file (secret_file) that holds it"
            )
        return data

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
        return url

    @field_validator("kinds")
    @classmethod
    def _kind_patterns(cls, kinds: list[str]) -> list[str]:
        for kind in kinds:
            if not _KIND_PATTERN.match(kind):
                raise ValueError(
                    f"{kind!r}: event kinds are upper case (queue_log style, e.g. WOCREATE), "
                    "with * and ? as wildcards"
                )
        return kinds

    @model_validator(mode="after")
    def _one_secret_and_safe_transport(self) -> WebhookSettings:
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("name the signing secret's place: secret_env or secret_file "
                             "(exactly one)")
        parts = urlsplit(self.url)
        if parts.scheme == "http" and not self.allow_plaintext and not _loopback(parts.hostname):
            raise ValueError(
                f"url: {self.url!r} is plain http off loopback: use https, or say "
                "allow_plaintext: true (a TLS proxy on the way)"
            )
        return self

    def secret(self, environ: Mapping[str, str] = os.environ) -> bytes:
        """The HMAC key: the ``whsec_<base64>`` secret of the environment variable or file,
        decoded. Raises :class:`WebhookSecretError` saying what is wrong."""
        if self.secret_env is not None:
            where = f"environment variable {self.secret_env}"
            text = environ.get(self.secret_env, "")
        else:
            where = f"secret_file {self.secret_file}"
            try:
                text = Path(str(self.secret_file)).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise WebhookSecretError(f"{where}: cannot read: {exc}") from None
        return decode_secret(text.strip(), where)


def decode_secret(text: str, where: str = "secret") -> bytes:
    """``whsec_<base64 of 24-64 bytes>`` (the Standard Webhooks form) as the key bytes."""
    if not text:
        raise WebhookSecretError(f"{where}: empty or not set; {NEW_SECRET_HINT}")
    if not text.startswith(SECRET_PREFIX):
        raise WebhookSecretError(f"{where}: not of the form whsec_<base64>; {NEW_SECRET_HINT}")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError(f"{where}: the part after whsec_ is not base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise WebhookSecretError(
            f"{where}: {len(key)} bytes; a secret has {MIN_SECRET_BYTES} to "
            f"{MAX_SECRET_BYTES} bytes; {NEW_SECRET_HINT}"
        )
    return key


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class WebhooksConfig(_Section):
    """``config/webhooks.yaml``."""

    # Name (in Redis keys, metrics and logs) -> receiver. Empty: no webhooks, nothing runs.
    webhooks: dict[str, WebhookSettings] = {}
    # A delivery left unacknowledged this long by a dead instance is taken over by another
    # (a live one keeps its delivery, retries and all, from being taken).
    claim_idle_s: float = Field(600.0, ge=10)

    @field_validator("webhooks")
    @classmethod
    def _names(cls, webhooks: dict[str, WebhookSettings]) -> dict[str, WebhookSettings]:
        for name in webhooks:
            if not _NAME.match(name):
                raise ValueError(
                    f"{name!r}: a webhook's name is 1-64 letters, digits, '_', '.' or '-' "
                    "(it names Redis keys and metrics)"
                )
        return webhooks


def secret_problems(
    config: WebhooksConfig | None, file: Path, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """One ``file: webhooks.<name>: reason`` line per webhook whose secret is not usable."""
    problems = []
    for name, hook in (config.webhooks if config else {}).items():
        try:
            hook.secret(environ)
        except WebhookSecretError as exc:
            problems.append(f"{file}: webhooks.{name}: {exc}")
    return problems
