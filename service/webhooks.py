"""Webhook delivery: POST the finished job's JSON, with bounded retries, through the same address guard
as video URLs (pipeline.fetch.guarded_client), so a webhook cannot be aimed at internal services.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpcore
import httpx

from pipeline.config import FetchConfig
from pipeline.errors import ErrorCode, MediaError
from pipeline.fetch import guarded_client
from pipeline.netguard import is_forbidden_ip, parse_host_literal

log = logging.getLogger("reelsense.service")
_RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


def check_webhook_url(url: str, allow_networks: tuple[str, ...]) -> None:
    """Refuse at submission what is refused anyway at delivery: non-http(s), internal IP literals.

    No DNS here: names are checked when delivering, at connect time (that also covers rebinding).
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise MediaError(ErrorCode.INVALID_SOURCE, f"invalid webhook_url: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise MediaError(ErrorCode.UNSUPPORTED_SCHEME, "webhook_url must be an http(s) URL with a host")
    literal = parse_host_literal(parsed.host)
    reason = is_forbidden_ip(literal, allow_networks) if literal is not None else None
    if reason is not None:
        raise MediaError(ErrorCode.URL_FORBIDDEN, f"webhook_url points to a {reason} address")


class WebhookSender:
    """Delivers in background threads so that a slow receiver never holds an analysis worker."""

    def __init__(
        self,
        fetch: FetchConfig,
        *,
        retries: int,
        backoff_s: float,
        timeout_s: float,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._fetch = replace(
            fetch, connect_timeout_s=timeout_s, read_timeout_s=timeout_s, total_timeout_s=timeout_s
        )
        self._retries, self._backoff_s = retries, backoff_s
        self._backend = network_backend
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reelsense-webhook")

    def send(self, url: str, payload: dict[str, Any]) -> None:
        self._pool.submit(self.deliver, url, payload)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def deliver(self, url: str, payload: dict[str, Any]) -> bool:
        """POST `payload`; retry connection errors and 408/429/5xx; True once a 2xx came back."""
        delay = self._backoff_s
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                with guarded_client(self._fetch, self._backend) as client:
                    response = client.post(url, json=payload, headers={"Content-Type": "application/json"})
            except MediaError as exc:  # refused by the address guard: retrying cannot help
                log.warning("webhook for job %s refused: %s", payload.get("id"), exc.message)
                return False
            except httpx.HTTPError as exc:
                log.info("webhook for job %s attempt %d failed: %s", payload.get("id"), attempt + 1, exc)
                continue
            if response.is_success:
                return True
            log.info(
                "webhook for job %s attempt %d: HTTP %d", payload.get("id"), attempt + 1, response.status_code
            )
            if response.status_code not in _RETRY_STATUSES:
                return False
        log.warning(
            "webhook for job %s not delivered after %d attempts", payload.get("id"), self._retries + 1
        )
        return False
