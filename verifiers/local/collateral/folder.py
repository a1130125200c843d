"""An offline collateral store over folders and files: each vendor's handler indexes what it knows.

Theory of operation. :class:`FolderStore` walks the folders it is given (recursively, sorted,
regular files only, bounded in count and size) and reads the files it is given by name. Each file
is offered to every registered :class:`VendorHandler`: a handler first says from the path alone
whether it wants a file from a folder walk (its file-name rules), then builds
:class:`~.base.Collateral` entries from the contents of all files it took. A file named
explicitly (e.g. ``--chain FILE``) is offered to every handler regardless of its name. The
entries are indexed by :class:`~.base.CollateralRequest`; ``get`` is a dictionary lookup, so the
file I/O happens once, at construction, like loading CoRIMs.

The store vouches for nothing (base.py): signatures, chains and validity at the appraisal's
``now`` are the scheme's job, so an expired certificate in a folder is simply found, then
rejected by the appraisal with a reason.

Registration hook. A vendor module calls :func:`register_handler` with its handler at import;
:data:`BUILTIN_VENDORS` lists the modules of this package that are imported (hence registered)
before the first walk: ``amd`` (:mod:`.amd`: certificates named like KDS downloads) and
``intel`` (:mod:`.intel`: PCS responses, dcap-qvl collateral documents, PCK CA chains and CRLs).
A further vendor is one more module name here and one ``register_handler`` call in that module.
Handlers must be pure functions of the bytes they are given.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from federation.errors import ConfigError, UsageError

from .base import Collateral, CollateralRequest

__all__ = [
    "BUILTIN_VENDORS",
    "FolderFile",
    "FolderStore",
    "VendorHandler",
    "handlers",
    "index_files",
    "register_handler",
]

BUILTIN_VENDORS: tuple[str, ...] = ("amd", "intel")  # modules of this package that register a handler
MAX_FILES = 10_000  # per store
MAX_FILE_SIZE = 1 << 20  # bytes per file; collateral files are a few KiB


@dataclass(frozen=True, slots=True)
class FolderFile:
    """A file offered to a handler: its path for messages, its path relative to the folder walked
    (for file-name rules; the bare name for a file given by name), and its contents."""

    path: str
    relpath: PurePosixPath
    data: bytes
    named: bool = False  # given explicitly rather than found in a folder


@runtime_checkable
class VendorHandler(Protocol):
    """Indexes one vendor's collateral files."""

    name: str

    def wants(self, relpath: PurePosixPath) -> bool:
        """Whether a file found in a folder walk is this vendor's, from its path alone."""
        ...

    def index(self, files: Sequence[FolderFile]) -> Iterable[Collateral]:
        """The collateral entries the files hold (files it cannot use are skipped, not errors)."""
        ...


_REGISTRY: dict[str, VendorHandler] = {}


def register_handler(handler: VendorHandler) -> VendorHandler:
    """Register a vendor handler (once per name); returns it, so it can decorate an instance."""
    if not isinstance(handler, VendorHandler):
        raise UsageError("a collateral handler needs name, wants() and index()")
    existing = _REGISTRY.get(handler.name)
    if existing is not None and existing is not handler:
        raise UsageError(f"collateral handler {handler.name!r} registered twice")
    _REGISTRY[handler.name] = handler
    return handler


def handlers() -> tuple[VendorHandler, ...]:
    """Every registered handler, the built-in vendors first (imported on first use)."""
    for module in BUILTIN_VENDORS:
        importlib.import_module(f"{__package__}.{module}")
    return tuple(_REGISTRY.values())


def index_files(files: Sequence[FolderFile], vendor_handlers: Sequence[VendorHandler]
                ) -> dict[CollateralRequest, Collateral]:
    """The request index of *files*: each handler sees the files it wants (and every named one).

    The first handler (then the first file, in walk order) to answer a request wins.
    """
    out: dict[CollateralRequest, Collateral] = {}
    for handler in vendor_handlers:
        mine = [f for f in files if f.named or handler.wants(f.relpath)]
        if not mine:
            continue
        for entry in handler.index(mine):
            out.setdefault(entry.request, entry)
    return out


def _read(path: Path, max_size: int) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(max_size + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read collateral: {exc.strerror}", file=str(path)) from exc
    if len(data) > max_size:
        raise ConfigError(f"collateral file larger than {max_size} bytes", file=str(path))
    return data


def _walk(root: Path, max_files: int) -> Iterable[Path]:
    """Regular files under *root*, sorted, not following symbolic links to folders."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_file():
                count += 1
                if count > max_files:
                    raise ConfigError(f"more than {max_files} collateral files", file=str(root))
                yield p


class FolderStore:
    """A :class:`~.base.CollateralStore` over folders and files, indexed once at construction."""

    def __init__(self, paths: str | Path | Sequence[str | Path], *,
                 vendor_handlers: Sequence[VendorHandler] | None = None,
                 max_files: int = MAX_FILES, max_file_size: int = MAX_FILE_SIZE) -> None:
        items = [paths] if isinstance(paths, str | Path) else list(paths)
        files: list[FolderFile] = []
        for item in map(Path, items):
            if item.is_dir():
                for p in _walk(item, max_files - len(files)):
                    rel = PurePosixPath(p.relative_to(item).as_posix())
                    files.append(FolderFile(str(p), rel, _read(p, max_file_size)))
            elif item.is_file():
                files.append(FolderFile(str(item), PurePosixPath(item.name), _read(item, max_file_size), named=True))
            else:
                raise ConfigError("no such collateral file or folder", file=str(item))
            if len(files) > max_files:
                raise ConfigError(f"more than {max_files} collateral files", file=str(item))
        self.sources = tuple(str(p) for p in items)
        self._index = index_files(files, vendor_handlers if vendor_handlers is not None else handlers())

    @property
    def requests(self) -> frozenset[CollateralRequest]:
        """Every request this store can answer."""
        return frozenset(self._index)

    def __len__(self) -> int:
        return len(self._index)

    async def get(self, request: CollateralRequest) -> Collateral | None:
        return self._index.get(request)
