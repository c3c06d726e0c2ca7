"""Where image files live: a small interface, and a local directory behind it.

Keys are made by ``imaging.image_key`` from the content's SHA-256, so a stored file
never changes (it is served as immutable) and the same upload twice is stored once.

A local directory serves one replica: another replica would not find the files this
one wrote. Replicas need a store they share (an S3-compatible object store): an
implementation of ``ImageStore`` whose ``put`` uploads, ``get`` downloads and
``delete`` removes an object under the same key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from pasar_products.imaging import is_image_key


class StorageError(Exception):
    """The store could not do what was asked (a full disk, an unreachable bucket)."""


class ImageStore(Protocol):
    """Bytes by key. Keys are checked by ``imaging.is_image_key`` before they get here."""

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` whole or not at all (a reader never sees half)."""

    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``; None if there are none."""

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens if it is not there."""


class LocalImageStore:
    """Files under one directory, ``<root>/<key>``; written to a temporary file and
    renamed, so a crash never leaves a half-written image under its key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # Keys are ours (hex and fixed names), so a key can name nothing outside the root.
        if not is_image_key(key):
            raise ValueError(f"not an image key: {key!r}")
        return self.root / key

    async def put(self, key: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._put, self._path(key), data)

    async def get(self, key: str) -> bytes | None:
        return await anyio.to_thread.run_sync(self._get, self._path(key))

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._delete, self._path(key))

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror}") from exc

    @staticmethod
    def _get(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}") from exc

    @staticmethod
    def _delete(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc.strerror}") from exc
        # The hash's directory goes with its last file; its two-letter parent stays.
        with contextlib.suppress(OSError):  # not empty yet, or already gone
            path.parent.rmdir()
