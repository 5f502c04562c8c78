"""Host, Origin and API-key checks for every HTTP request and WebSocket handshake.

Secure by default: a request for a foreign ``Host`` (DNS rebinding) or from a foreign
browser ``Origin`` is refused with 403 whether or not API keys are configured, so a web
page the user happens to visit cannot reach the local server. When API keys are
configured, every route but ``GET /health`` (and ``GET /metrics`` with
``THEO_METRICS_PUBLIC``) also needs ``Authorization: Bearer <key>``.

The checks run in this order: Host, Origin, CORS preflight, API key. Preflights are
answered without a key because browsers never send credentials on them.
"""

from theo.server.security.middleware import SecurityMiddleware, accepted_subprotocol
from theo.server.security.policy import (
    SecurityConfigError,
    SecurityPolicy,
    load_api_keys,
    split_host,
)

__all__ = [
    "SecurityConfigError",
    "SecurityMiddleware",
    "SecurityPolicy",
    "accepted_subprotocol",
    "load_api_keys",
    "split_host",
]
