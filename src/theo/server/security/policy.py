"""Which hosts, origins and API keys the server accepts: the policy, read from settings."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from theo.config import Settings

REALTIME_SUBPROTOCOL = "realtime"
"""Subprotocol OpenAI's realtime clients offer; selected whenever a client offers it."""
KEY_SUBPROTOCOL_PREFIXES = ("theo-api-key.", "openai-insecure-api-key.")
"""WebSocket subprotocols that carry an API key (browsers cannot set headers on a WS)."""
KEY_QUERY_PARAM = "api_key"
"""Query parameter that may carry the API key of a WebSocket."""

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_WILDCARD_BINDS = ("0.0.0.0", "::", "")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_EXCERPT_CHARS = 64


class SecurityConfigError(ValueError):
    """The API key settings cannot be used (unreadable key file, malformed key)."""


def load_api_keys(settings: Settings) -> tuple[str, ...]:
    """The API keys from ``THEO_API_KEYS`` and ``THEO_API_KEYS_FILE``, in order, deduplicated.

    Args:
        settings: the server settings.

    Returns:
        Every configured key; empty when authentication is off.

    Raises:
        SecurityConfigError: the key file cannot be read or a key contains whitespace.
    """
    keys = [(key.strip(), "THEO_API_KEYS") for key in settings.api_keys.split(",")]
    path = settings.api_keys_file
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecurityConfigError(f"cannot read THEO_API_KEYS_FILE {path}: {exc}") from exc
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip().startswith("#"):
                keys.append((line.strip(), f"THEO_API_KEYS_FILE line {number}"))
    accepted: dict[str, None] = {}
    for key, source in keys:
        if not key:
            continue
        # A Bearer token cannot hold whitespace, so such a key could never match; this
        # also catches a trailing "# comment" on a key line.
        if any(c.isspace() for c in key):
            raise SecurityConfigError(f"{source}: an API key may not contain whitespace.")
        accepted[key] = None
    return tuple(accepted)


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def split_host(value: str) -> tuple[str, int | None]:
    """Host name (lower case, no brackets, no trailing dot) and port of a Host header value."""
    value = value.strip().lower()
    port_text = ""
    if value.startswith("["):
        end = value.find("]")
        name = value[1:end] if end != -1 else value[1:]
        if end != -1 and value[end + 1 : end + 2] == ":":
            port_text = value[end + 2 :]
    elif value.count(":") == 1:
        name, port_text = value.split(":", 1)
    else:  # a bare name, or an IPv6 literal without brackets
        name = value
    port = int(port_text) if port_text.isdigit() else None
    return name.rstrip("."), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, default port filled in; None if malformed."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.rstrip("."), port or _DEFAULT_PORTS.get(parts.scheme, 0)


def excerpt(value: str) -> str:
    """A short, printable-ASCII excerpt of a client-supplied value for messages and logs."""
    cleaned = "".join(c if c.isascii() and c.isprintable() else "?" for c in value)
    if len(cleaned) > _EXCERPT_CHARS:
        return cleaned[:_EXCERPT_CHARS] + "..."
    return cleaned


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """What the server accepts; built once from the settings.

    Attributes:
        api_keys: accepted keys, as UTF-8 bytes; empty means no authentication.
        metrics_public: serve ``GET /metrics`` without a key.
        allowed_origins: ``(scheme, host, port)`` of the origins allowed cross-origin.
        any_origin: every origin is allowed (``*``).
        allowed_hosts: exact Host names answered.
        host_suffixes: Host name suffixes answered (``.localhost`` and ``*.name`` entries).
        any_host: the Host check is off (``*``).
        any_ip_host: every IP-literal Host is answered (the server is bound to a wildcard).
    """

    api_keys: tuple[bytes, ...] = ()
    metrics_public: bool = False
    allowed_origins: frozenset[tuple[str, str, int]] = field(default_factory=frozenset)
    any_origin: bool = False
    allowed_hosts: frozenset[str] = frozenset(_LOCAL_HOSTS)
    host_suffixes: tuple[str, ...] = (".localhost",)
    any_host: bool = False
    any_ip_host: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SecurityPolicy:
        """Build the policy from ``THEO_API_KEYS*``, ``THEO_ALLOWED_*`` and the bind address.

        Raises:
            SecurityConfigError: the API key settings or an allowed origin cannot be used.
        """
        origins = _split_list(settings.allowed_origins)
        parsed_origins = set()
        for origin in origins:
            if origin == "*":
                continue
            parts = _origin_parts(origin)
            if parts is None:
                raise SecurityConfigError(
                    f"THEO_ALLOWED_ORIGINS: {excerpt(origin)!r} is not an origin such as "
                    "http://localhost:3000."
                )
            parsed_origins.add(parts)
        hosts = _split_list(settings.allowed_hosts)
        exact = {*_LOCAL_HOSTS, split_host(settings.host)[0]}
        suffixes = [".localhost"]
        for host in hosts:
            if host.startswith("*."):
                suffixes.append(split_host(host[1:])[0])
            elif host != "*":
                exact.add(split_host(host)[0])
        return cls(
            api_keys=tuple(key.encode() for key in load_api_keys(settings)),
            metrics_public=settings.metrics_public,
            allowed_origins=frozenset(parsed_origins),
            any_origin="*" in origins,
            allowed_hosts=frozenset(exact),
            host_suffixes=tuple(suffixes),
            any_host="*" in hosts,
            any_ip_host=settings.host.strip("[]") in _WILDCARD_BINDS,
        )

    @property
    def auth_required(self) -> bool:
        """Whether requests need an API key."""
        return bool(self.api_keys)

    def host_allowed(self, host_header: str) -> bool:
        """Whether the server answers requests for this ``Host`` header value."""
        if self.any_host:
            return True
        name, _ = split_host(host_header)
        if name in self.allowed_hosts or name.endswith(self.host_suffixes):
            return True
        # DNS rebinding needs a domain name the attacker controls, never an IP literal.
        return self.any_ip_host and _is_ip(name)

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        """Whether a browser request from ``origin`` may be served.

        Same-origin requests (Origin's host and port equal the Host header's) always are.
        """
        if self.any_origin:
            return True
        parts = _origin_parts(origin)
        if parts is None:
            return False  # "null" (sandboxed frames, file://) and garbage
        if parts in self.allowed_origins:
            return True
        if host_header is None:
            return False
        name, port = split_host(host_header)
        return (name, port or _DEFAULT_PORTS.get(parts[0], 0)) == parts[1:]

    def key_valid(self, candidate: str) -> bool:
        """Whether ``candidate`` is one of the configured keys (constant-time per key)."""
        given = candidate.encode("utf-8", errors="surrogateescape")
        matched = False
        for key in self.api_keys:
            # No short-circuit: the time taken does not tell which key came close.
            matched |= hmac.compare_digest(given, key)
        return matched
