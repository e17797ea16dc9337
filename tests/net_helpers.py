"""A network backend for tests below the fetch layer's address guard: it records every connection the
guard asks for and connects to loopback only, so a bug in the guard can never send a packet off the
machine. Used by the fetch tests and by the service tests' fake analyzer."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import httpcore


class RecordingBackend(httpcore.NetworkBackend):
    """Records every connection the guard asks for; connects to loopback only, refuses the rest.

    With `misroute_to`, connects to that local port whatever it is asked for, as a rebinding NAT would.
    """

    def __init__(self, misroute_to: int | None = None) -> None:
        self.attempts: list[tuple[str, int]] = []
        self.sent: list[bytes] = []  # per connection, every byte written to it
        self.misroute_to = misroute_to
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        self.attempts.append((host, port))
        if self.misroute_to is not None:
            stream = self._inner.connect_tcp(
                "127.0.0.1", self.misroute_to, timeout, local_address, socket_options
            )
            return self._recorded(stream)
        ip = ipaddress.ip_address(host)  # the guard must hand down a vetted IP, never a name
        if not ip.is_loopback:
            raise httpcore.ConnectError(f"test backend refuses {host}")
        return self._recorded(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def _recorded(self, stream: httpcore.NetworkStream) -> httpcore.NetworkStream:
        self.sent.append(b"")
        return _RecordingStream(stream, self.sent, len(self.sent) - 1)

    def hosts(self) -> set[str]:
        return {host for host, _ in self.attempts}

    @property
    def refused(self) -> list[tuple[str, int]]:
        """The connections asked for beyond loopback (the guard should have stopped every one)."""
        return [(host, port) for host, port in self.attempts if not _is_loopback(host)]


class _RecordingStream(httpcore.NetworkStream):
    """A connection that appends what is written to it to `sent[index]` before sending it."""

    def __init__(self, inner: httpcore.NetworkStream, sent: list[bytes], index: int) -> None:
        self._inner, self._sent, self._index = inner, sent, index

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._sent[self._index] += buffer
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return self._inner.start_tls(*args, **kwargs)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name reached the backend: the guard should have resolved it
