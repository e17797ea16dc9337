"""Which requests the service answers at all: the `Host` it is reached by, and for state-changing
requests, the page that sent them.

On the loopback no-key default, any web page the operator's browser opens could otherwise POST jobs
to http://127.0.0.1:8000 (a cross-origin form post needs no CORS preflight), and a DNS-rebinding page
could read answers through a name of its own that resolves to 127.0.0.1. So:
- `Host` must be one of the names the service is reached by (ALLOWED_HOSTS; by default, on a loopback
  bind, loopback names and addresses only; on any other bind, any host, since API keys are then required);
- POST/PUT/PATCH/DELETE from a browser must come from the service's own origin: `Sec-Fetch-Site` is
  same-origin or none (typed in), else `Origin` names the same host and port as `Host`. Clients that are
  not browsers send neither header and are not affected; the service's own web page is same-origin.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

from starlette.requests import Request

from service.errors import ApiError
from service.settings import Settings, is_loopback_host

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK_NAMES = frozenset({"localhost"})


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The host names requests may name (lower case, no port); None: any."""
    configured = {h.strip().lower().strip("[]") for h in settings.allowed_hosts.split(",") if h.strip()}
    if configured:
        return frozenset(configured)
    if is_loopback_host(settings.host):
        return _LOOPBACK_NAMES | {settings.host.lower().strip("[]")}
    return None


def check_request(request: Request, hosts: frozenset[str] | None) -> None:
    """Raise ApiError for a foreign Host or a cross-origin state-changing request."""
    host_header = request.headers.get("host", "")
    host = _hostname(host_header)
    if hosts is not None and not _host_allowed(host, hosts):
        raise ApiError(421, "misdirected_request", "this service is not served under that Host name")
    if request.method not in _UNSAFE_METHODS:
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise ApiError(403, "cross_origin", "requests from other sites' pages are refused")
    origin = request.headers.get("origin")
    if site is None and origin is not None and not _same_origin(origin, host_header):
        raise ApiError(403, "cross_origin", "requests from other sites' pages are refused")


def _hostname(host_header: str) -> str:
    parsed = urllib.parse.urlsplit(f"//{host_header}")
    try:
        return (parsed.hostname or "").lower()
    except ValueError:
        return ""


def _host_allowed(host: str, hosts: frozenset[str]) -> bool:
    if host in hosts:
        return True
    if "localhost" not in hosts:
        return False
    try:  # a loopback default: every loopback address (127.0.0.2, ::1) is this machine too
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _same_origin(origin: str, host_header: str) -> bool:
    parsed = urllib.parse.urlsplit(origin)
    return parsed.scheme in ("http", "https") and parsed.netloc.lower() == host_header.lower()
