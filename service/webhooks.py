"""Webhook delivery: POST the finished job's JSON, with bounded retries, through the address guard
(pipeline.fetch.guarded_client), so a webhook cannot be aimed at internal services. Webhooks have their
own allow-list (`webhook_allow_networks`): opening internal networks to video URLs does not open them to
webhooks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpcore
import httpx

from core.errors import ErrorCode, MediaError
from pipeline.config import FetchConfig
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
    """Delivers in background threads so that a slow receiver never holds an analysis worker.

    Deliveries to one receiver (scheme, host and port) go one after another on one thread, so a receiver
    that answers slowly delays only its own webhooks; up to `max_workers` receivers are served at once.
    Each attempt has one deadline for everything (connect, send, status line and headers), and the reply
    body is never read: a receiver answering with a gigabyte costs nothing.
    """

    def __init__(
        self,
        fetch: FetchConfig,
        *,
        retries: int,
        backoff_s: float,
        timeout_s: float,
        max_workers: int = 8,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._fetch = replace(
            fetch, connect_timeout_s=timeout_s, read_timeout_s=timeout_s, total_timeout_s=timeout_s
        )
        self._retries, self._backoff_s, self._timeout_s = retries, backoff_s, timeout_s
        self._backend = network_backend
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="reelsense-webhook")
        self._lock = threading.Lock()
        self._waiting: dict[str, deque[tuple[str, dict[str, Any]]]] = {}  # receiver -> its queue

    def send(self, url: str, payload: dict[str, Any]) -> None:
        receiver = _receiver(url)
        with self._lock:
            if receiver in self._waiting:  # that receiver's thread is busy: it takes this one next
                self._waiting[receiver].append((url, payload))
                return
            self._waiting[receiver] = deque([(url, payload)])
        self._pool.submit(self._drain, receiver)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _drain(self, receiver: str) -> None:
        while True:
            with self._lock:
                pending = self._waiting[receiver]
                if not pending:
                    del self._waiting[receiver]
                    return
                url, payload = pending.popleft()
            try:
                self.deliver(url, payload)
            except Exception:  # a bug must not leave the receiver's queue without a thread
                log.exception("webhook for job %s failed", payload.get("id"))

    def deliver(self, url: str, payload: dict[str, Any]) -> bool:
        """POST `payload`; retry connection errors, timeouts and 408/429/5xx; True once a 2xx came back."""
        delay = self._backoff_s
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                status = self._post_once(url, payload)
            except MediaError as exc:  # refused by the address guard: retrying cannot help
                log.warning("webhook for job %s refused: %s", payload.get("id"), exc.message)
                return False
            except httpx.HTTPError as exc:
                log.info("webhook for job %s attempt %d failed: %s", payload.get("id"), attempt + 1, exc)
                continue
            if 200 <= status < 300:
                return True
            log.info("webhook for job %s attempt %d: HTTP %d", payload.get("id"), attempt + 1, status)
            if status not in _RETRY_STATUSES:
                return False
        log.warning(
            "webhook for job %s not delivered after %d attempts", payload.get("id"), self._retries + 1
        )
        return False

    def _post_once(self, url: str, payload: dict[str, Any]) -> int:
        """One attempt, within one deadline; the status code. The reply body is left unread (the
        connection is closed with it)."""
        deadline = time.monotonic() + self._timeout_s
        with (
            guarded_client(self._fetch, self._backend, deadline=deadline) as client,
            client.stream("POST", url, json=payload) as response,
        ):
            return response.status_code


def _receiver(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return url
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"
