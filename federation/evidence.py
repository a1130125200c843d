"""Evidence as the federation sees it: opaque bytes and a media type.

The federation never interprets Evidence; backends do. The media type routes it (a local
appraiser picks a scheme by it; a remote verifier receives it as ``Content-Type``). When a caller
does not know the type, :func:`sniff` recognises the formats by their first bytes, using rules
that the schemes register (data, not code paths here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

__all__ = ["MAX_EVIDENCE", "Evidence", "register_sniffer", "sniff"]

MAX_EVIDENCE = 1 << 20  # bytes; larger Evidence is refused before any parsing

Sniffer = Callable[[bytes], str | None]
_SNIFFERS: list[Sniffer] = []


def register_sniffer(sniffer: Sniffer) -> Sniffer:
    """Schemes register a function that returns a media type for bytes they recognise."""
    _SNIFFERS.append(sniffer)
    return sniffer


def sniff(data: bytes) -> str | None:
    for sniffer in _SNIFFERS:
        try:
            found = sniffer(data)
        except Exception:  # noqa: S112 - a sniffer's failure only means "not mine"
            continue
        if found:
            return found
    return None


@dataclass(frozen=True, slots=True)
class Evidence:
    media_type: str
    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise UsageError("evidence data must be bytes")
        if len(self.data) > MAX_EVIDENCE:
            raise UsageError(f"evidence of {len(self.data)} bytes exceeds {MAX_EVIDENCE}")
        if not self.media_type or len(self.media_type) > 256:
            raise UsageError("evidence needs a media type")

    @classmethod
    def from_file(cls, path: str | Path, media_type: str | None = None) -> Evidence:
        """Read Evidence from a file; the media type is sniffed when not given."""
        p = Path(path)
        try:
            size = p.stat().st_size
            if size > MAX_EVIDENCE:
                raise UsageError(f"{p}: {size} bytes exceeds {MAX_EVIDENCE}")
            data = p.read_bytes()
        except OSError as exc:
            raise UsageError(f"{p}: {exc.strerror}") from exc
        mt = media_type or sniff(data)
        if mt is None:
            raise UsageError(f"{p}: cannot tell the media type; pass it explicitly")
        return cls(mt, data)

    @property
    def base_type(self) -> str:
        """The media type without parameters, lower-cased (for routing)."""
        return self.media_type.split(";", 1)[0].strip().lower()
