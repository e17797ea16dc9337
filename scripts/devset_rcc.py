"""Read files out of a compiled Qt resource (.rcc) file, the way GCompris ships its images and sounds.

Format (Qt's rcc, versions 1-3): a 'qres' header with big-endian offsets to a tree of fixed-size nodes, a
name table (UTF-16BE) and a data table. File payloads may be zlib-compressed (flag 1) with a 4-byte
uncompressed length in front; zstd payloads (flag 4, Qt 6 only) are refused since Debian's GCompris uses Qt 5.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"qres"
FLAG_COMPRESSED = 0x01  # zlib, with a 4-byte big-endian uncompressed size in front
FLAG_DIRECTORY = 0x02
FLAG_ZSTD = 0x04


@dataclass(frozen=True)
class RccEntry:
    """One file inside an .rcc: its path ('/categorization/resource/board/animals.qml') and payload place."""

    path: str
    flags: int
    data_offset: int  # absolute offset of the 4-byte size in front of the payload


class RccArchive:
    """A whole .rcc file in memory, with its file index (small: GCompris files are a few MB each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._blob = path.read_bytes()
        if self._blob[:4] != MAGIC:
            raise ValueError(f"{path}: not a Qt resource file (no 'qres' magic)")
        version, tree, data, names = struct.unpack(">IIII", self._blob[4:20])
        if version not in (1, 2, 3):
            raise ValueError(f"{path}: unsupported rcc version {version}")
        self._tree, self._data, self._names = tree, data, names
        self._node_size = 14 if version == 1 else 22  # v2+ adds an 8-byte modification time
        self.entries: dict[str, RccEntry] = {}
        self._walk(0, "")

    def _name(self, offset: int) -> str:
        start = self._names + offset
        (length,) = struct.unpack(">H", self._blob[start : start + 2])
        raw = self._blob[start + 6 : start + 6 + 2 * length]  # skip the 4-byte name hash
        return raw.decode("utf-16-be")

    def _walk(self, node: int, prefix: str) -> None:
        base = self._tree + node * self._node_size
        name_off, flags = struct.unpack(">IH", self._blob[base : base + 6])
        name = "" if node == 0 else self._name(name_off)
        path = f"{prefix}/{name}" if node else ""
        if flags & FLAG_DIRECTORY:
            count, first = struct.unpack(">II", self._blob[base + 6 : base + 14])
            for child in range(first, first + count):
                self._walk(child, path)
            return
        (data_off,) = struct.unpack(">I", self._blob[base + 10 : base + 14])
        self.entries[path] = RccEntry(path, flags, self._data + data_off)

    def read(self, path: str) -> bytes:
        """The payload of one file, decompressed."""
        entry = self.entries[path]
        (size,) = struct.unpack(">I", self._blob[entry.data_offset : entry.data_offset + 4])
        payload = self._blob[entry.data_offset + 4 : entry.data_offset + 4 + size]
        if entry.flags & FLAG_ZSTD:
            raise ValueError(f"{self.path}:{path}: zstd-compressed resource (Qt 6) is not supported")
        if entry.flags & FLAG_COMPRESSED:
            return zlib.decompress(payload[4:])
        return payload
