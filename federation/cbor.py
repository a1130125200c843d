"""A strict, bounded CBOR decoder for untrusted input, and a deterministic encoder.

Why our own decoder: cbor2 silently ignores trailing bytes, turns tags 28/29 into shared
(possibly cyclic) references, and decodes tags 1, 2, 258, ... into Python objects we did not ask
for. Evidence and results are hostile input, so this decoder:

* returns every tag as :class:`cbor2.CBORTag` with its raw content (no semantic decoding);
* rejects trailing bytes, duplicate map keys, unhashable keys, reserved/undefined simple values;
* bounds the input size, the nesting depth and the number of items;
* rejects indefinite lengths unless the caller allows them (some real tokens use them).

Maps decode to ``dict``, arrays to ``list``. Encoding uses cbor2 (our own, trusted data) with
deterministic (core, RFC 8949 §4.2.1) ordering so that digests are stable.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2
from cbor2 import CBORTag

from .errors import MalformedError

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_SIZE", "CBORTag", "dumps", "loads"]

DEFAULT_MAX_SIZE = 1 << 20  # bytes
DEFAULT_MAX_DEPTH = 16  # nested arrays/maps/tags
_DEFAULT_MAX_ITEMS = 1 << 16  # data items in one document

_BREAK = object()


class _Decoder:
    __slots__ = ("allow_indefinite", "buf", "items", "max_depth", "max_items", "pos")

    def __init__(self, buf: bytes, max_depth: int, max_items: int, allow_indefinite: bool) -> None:
        self.buf = buf
        self.pos = 0
        self.max_depth = max_depth
        self.max_items = max_items
        self.items = 0
        self.allow_indefinite = allow_indefinite

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise MalformedError("cbor: truncated input")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def _argument(self, info: int) -> int | None:
        if info < 24:
            return info
        if info == 24:
            return self._take(1)[0]
        if info == 25:
            return int.from_bytes(self._take(2), "big")
        if info == 26:
            return int.from_bytes(self._take(4), "big")
        if info == 27:
            return int.from_bytes(self._take(8), "big")
        if info == 31:
            return None  # indefinite
        raise MalformedError(f"cbor: reserved additional information {info}")

    def _length(self, arg: int) -> int:
        # A length can never exceed what is left in the buffer (each item takes >= 1 byte).
        if arg > len(self.buf) - self.pos:
            raise MalformedError("cbor: declared length exceeds input")
        return arg

    def decode(self, depth: int) -> Any:
        self.items += 1
        if self.items > self.max_items:
            raise MalformedError("cbor: too many data items")
        if self.pos >= len(self.buf):
            raise MalformedError("cbor: truncated input")
        initial = self.buf[self.pos]
        self.pos += 1
        major, info = initial >> 5, initial & 0x1F
        if major == 7:
            return self._simple(info)
        arg = self._argument(info)
        if major == 0:
            if arg is None:
                raise MalformedError("cbor: indefinite integer")
            return arg
        if major == 1:
            if arg is None:
                raise MalformedError("cbor: indefinite integer")
            return -1 - arg
        if major in (2, 3):
            return self._string(major, arg)
        if depth >= self.max_depth:
            raise MalformedError(f"cbor: nesting deeper than {self.max_depth}")
        if major == 4:
            return self._array(arg, depth + 1)
        if major == 5:
            return self._map(arg, depth + 1)
        # major == 6: tag
        if arg is None:
            raise MalformedError("cbor: indefinite tag")
        value = self.decode(depth + 1)
        if value is _BREAK:
            raise MalformedError("cbor: unexpected break")
        return CBORTag(arg, value)

    def _simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if info == 25:
            return struct.unpack(">e", self._take(2))[0]
        if info == 26:
            return struct.unpack(">f", self._take(4))[0]
        if info == 27:
            return struct.unpack(">d", self._take(8))[0]
        if info == 31:
            return _BREAK
        raise MalformedError(f"cbor: unsupported simple value {info}")

    def _string(self, major: int, arg: int | None) -> bytes | str:
        if arg is None:
            if not self.allow_indefinite:
                raise MalformedError("cbor: indefinite-length string not allowed")
            chunks: list[bytes] = []
            while True:
                if self.pos >= len(self.buf):
                    raise MalformedError("cbor: truncated input")
                initial = self.buf[self.pos]
                self.pos += 1
                if initial == 0xFF:
                    break
                if initial >> 5 != major:
                    raise MalformedError("cbor: bad chunk in indefinite string")
                length = self._argument(initial & 0x1F)
                if length is None:
                    raise MalformedError("cbor: nested indefinite string")
                chunks.append(self._take(self._length(length)))
            raw = b"".join(chunks)
        else:
            raw = self._take(self._length(arg))
        if major == 2:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedError("cbor: text string is not UTF-8") from exc

    def _array(self, arg: int | None, depth: int) -> list[Any]:
        out: list[Any] = []
        if arg is None:
            if not self.allow_indefinite:
                raise MalformedError("cbor: indefinite-length array not allowed")
            while (item := self.decode(depth)) is not _BREAK:
                out.append(item)
            return out
        for _ in range(self._length(arg)):
            item = self.decode(depth)
            if item is _BREAK:
                raise MalformedError("cbor: unexpected break")
            out.append(item)
        return out

    def _map(self, arg: int | None, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        count = None if arg is None else self._length(arg)
        if count is None and not self.allow_indefinite:
            raise MalformedError("cbor: indefinite-length map not allowed")
        i = 0
        while count is None or i < count:
            key = self.decode(depth)
            if key is _BREAK:
                if count is None:
                    return out
                raise MalformedError("cbor: unexpected break")
            key = _hashable(key)
            value = self.decode(depth)
            if value is _BREAK:
                raise MalformedError("cbor: map key without value")
            if key in out:
                raise MalformedError(f"cbor: duplicate map key {key!r:.40}")
            out[key] = value
            i += 1
        return out


def _hashable(key: Any) -> Any:
    """Map keys in our formats are ints, text, bytes or tagged scalars; anything else is hostile."""
    if isinstance(key, int | str | bytes | bool) or key is None:
        return key
    if isinstance(key, CBORTag) and isinstance(key.value, int | str | bytes):
        return key
    raise MalformedError("cbor: unsupported map key type")


def loads(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    allow_indefinite: bool = False,
) -> Any:
    """Decode exactly one CBOR data item from *data*; raise :class:`MalformedError` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError("cbor: input is not bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise MalformedError(f"cbor: input of {len(data)} bytes exceeds {max_size}")
    dec = _Decoder(data, max_depth, _DEFAULT_MAX_ITEMS, allow_indefinite)
    try:
        value = dec.decode(0)
    except RecursionError as exc:  # a caller's max_depth above what the interpreter's stack allows
        raise MalformedError("cbor: nesting too deep") from exc
    if value is _BREAK:
        raise MalformedError("cbor: unexpected break")
    if dec.pos != len(data):
        raise MalformedError(f"cbor: {len(data) - dec.pos} trailing bytes")
    return value


def dumps(value: Any) -> bytes:
    """Deterministic encoding of trusted data (ours), so that digests are reproducible."""
    try:
        return bytes(cbor2.dumps(value, canonical=True))
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise MalformedError(f"cbor: cannot encode: {exc}") from exc
