"""Where a job's source lives: a path under SOURCE_ROOT or an object in an allowed staging bucket."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import Any, NoReturn, Protocol

from botocore.exceptions import ClientError

from chalicelib.config import Settings
from chalicelib.errors import ErrorCode, PermanentUploadError, RetryableUploadError, UploadError


@dataclass(frozen=True)
class SourceLocation:
    """Exactly one of `path` (local, resolved inside the root) or `bucket` + `key` is set."""

    ref: str
    path: Path | None = None
    bucket: str | None = None
    key: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None


def _forbidden(ref: str, why: str) -> PermanentUploadError:
    return PermanentUploadError(ErrorCode.SOURCE_FORBIDDEN, f"The source {ref!r} is not allowed: {why}.")


def locate(ref: str, root: Path, buckets: Sequence[str]) -> SourceLocation:
    """Check a source reference against SPEC 2's rules and say where it is.

    Refuses `..`, absolute paths outside the root, symlinks that leave the root, and buckets
    not listed in SOURCE_BUCKETS. It does not check that the source exists.
    """
    if not ref or "\x00" in ref:
        raise _forbidden(ref, "it is empty")
    if ref.startswith("s3://"):
        bucket, _, key = ref[len("s3://") :].partition("/")
        if bucket not in buckets:
            raise _forbidden(ref, f"bucket {bucket!r} is not in SOURCE_BUCKETS")
        if not key or ".." in PurePosixPath(key).parts or key.startswith("/"):
            raise _forbidden(ref, "the key is empty or contains '..'")
        return SourceLocation(ref=ref, bucket=bucket, key=key)
    if "://" in ref:
        raise _forbidden(ref, "only paths under SOURCE_ROOT and s3:// staging buckets are sources")
    if ".." in PurePosixPath(ref).parts:
        raise _forbidden(ref, "it contains '..'")
    real_root = Path(os.path.realpath(root))
    candidate = Path(ref) if os.path.isabs(ref) else real_root / ref
    resolved = Path(os.path.realpath(candidate))
    if not (resolved == real_root or real_root in resolved.parents):
        raise _forbidden(ref, "it is outside SOURCE_ROOT (or a symlink leads out of it)")
    return SourceLocation(ref=ref, path=resolved)


# --- Readable sources ---------------------------------------------------------------------------
#
# The engine reads a source one byte range at a time, when the part's upload starts, so memory
# stays bounded by part size x concurrency whatever the file size. A local file is opened per
# range (cheap, and no descriptor outlives a task); an s3:// object is read with one ranged GET
# per range, the body streamed straight into the part's buffer.


class SourceFile(Protocol):
    """One file to upload: its size and its bytes, a range at a time."""

    @property
    def ref(self) -> str:
        """Where it is, for messages: a path or `s3://bucket/key`."""
        ...

    @property
    def size(self) -> int: ...

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """`length` bytes from `offset` (to the end when None). Raises PermanentUploadError
        SOURCE_NOT_FOUND / ACCESS_DENIED, or RetryableUploadError if the file changed size."""
        ...


@dataclass(frozen=True)
class SourceEntry:
    """A file found in a source folder: its path relative to that folder (`/`-separated)."""

    relative_path: str
    file: SourceFile

    @property
    def size(self) -> int:
        return self.file.size


def _not_found(ref: str, why: str = "it does not exist") -> PermanentUploadError:
    return PermanentUploadError(ErrorCode.SOURCE_NOT_FOUND, f"The source {ref!r} cannot be found: {why}.")


def source_read_error(ref: str, error: OSError) -> UploadError:
    if isinstance(error, FileNotFoundError | NotADirectoryError):
        return _not_found(ref)
    if isinstance(error, PermissionError):
        return PermanentUploadError(
            ErrorCode.ACCESS_DENIED, f"The source {ref!r} cannot be read: permission denied.", str(error)
        )
    if isinstance(error, IsADirectoryError):
        return _not_found(ref, "it is a folder, not a file")
    # EIO and friends on a network file system (EFS) may pass; let the job retry.
    return RetryableUploadError(ErrorCode.UPLOAD_FAILED, f"Reading the source {ref!r} failed.", str(error))


def _short_read(ref: str, offset: int, wanted: int, got: int) -> RetryableUploadError:
    return RetryableUploadError(
        ErrorCode.UPLOAD_FAILED,
        f"The source {ref!r} changed while it was being uploaded.",
        f"read {got} bytes at offset {offset}, expected {wanted}",
    )


@dataclass(frozen=True)
class LocalFile:
    """A file under SOURCE_ROOT (its path already checked by `locate`)."""

    path: Path
    size: int
    ref: str

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        wanted = self.size - offset if length is None else length
        try:
            with open(self.path, "rb") as handle:
                if offset:
                    handle.seek(offset)
                data = handle.read(wanted)
        except OSError as error:
            raise source_read_error(self.ref, error) from error
        if len(data) != wanted:
            raise _short_read(self.ref, offset, wanted, len(data))
        return data


def _s3_error(ref: str, error: ClientError) -> UploadError | None:
    """Source-side meaning of an S3 error; None leaves it for the engine to classify."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound") or status == 404:
        return _not_found(ref)
    if code in ("AccessDenied", "403", "Forbidden") or status == 403:
        return PermanentUploadError(
            ErrorCode.ACCESS_DENIED,
            f"The staging bucket refused to let us read {ref!r}; check the worker's access to it.",
            str(error),
        )
    return None


def _raise_s3(ref: str, error: ClientError) -> NoReturn:
    meaning = _s3_error(ref, error)
    if meaning is None:
        raise error
    raise meaning from error


@dataclass(frozen=True)
class S3File:
    """An object in a staging bucket listed in SOURCE_BUCKETS, read with ranged GETs."""

    client: Any
    bucket: str
    key: str
    size: int

    @property
    def ref(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        wanted = self.size - offset if length is None else length
        if wanted == 0:
            return b""
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if offset or wanted != self.size:
            request["Range"] = f"bytes={offset}-{offset + wanted - 1}"
        try:
            body = self.client.get_object(**request)["Body"]
        except ClientError as error:
            _raise_s3(self.ref, error)
        try:
            data: bytes = body.read()
        finally:
            body.close()
        if len(data) != wanted:
            raise _short_read(self.ref, offset, wanted, len(data))
        return data


class Sources:
    """Opens, lists and removes job sources, with `locate`'s safety rules applied to each.

    `s3` is the boto3 client for the staging buckets (it may differ from the destination's);
    without it, s3:// sources are refused.
    """

    def __init__(self, root: Path, buckets: Sequence[str], s3: Any = None) -> None:
        self.root = Path(os.path.realpath(root))
        self._given_root = Path(os.path.abspath(root))
        self.buckets = tuple(buckets)
        self.s3 = s3

    @classmethod
    def from_settings(cls, settings: Settings, s3: Any = None) -> Sources:
        return cls(settings.source_root, settings.source_buckets, s3)

    def locate(self, ref: str) -> SourceLocation:
        return locate(ref, self.root, self.buckets)

    def file(self, ref: str) -> SourceFile:
        """One file; SOURCE_NOT_FOUND when it is missing or is a folder."""
        location = self.locate(ref)
        if location.path is None:
            bucket, key = self._s3_location(location)
            try:
                head = self._client(ref).head_object(Bucket=bucket, Key=key)
            except ClientError as error:
                _raise_s3(ref, error)
            return S3File(self._client(ref), bucket, key, int(head["ContentLength"]))
        try:
            stat = location.path.stat()
        except OSError as error:
            raise source_read_error(ref, error) from error
        if not S_ISREG(stat.st_mode):
            raise _not_found(ref, "it is not a regular file")
        return LocalFile(location.path, stat.st_size, ref)

    def directory(self, ref: str) -> list[SourceEntry]:
        """Every file below a folder (a local folder, or an s3:// prefix), sorted by relative path.

        SOURCE_NOT_FOUND when the folder is missing or empty. A symlink inside the folder that
        leads out of SOURCE_ROOT makes the whole listing SOURCE_FORBIDDEN; symlinked folders are
        not followed (no loops, no surprises).
        """
        location = self.locate(ref)
        entries = self._s3_listing(location) if location.path is None else self._local_listing(location.path, ref)
        if not entries:
            raise _not_found(ref, "the folder is missing or empty")
        return sorted(entries, key=lambda entry: entry.relative_path)

    def remove(self, ref: str) -> int:
        """Delete a source file or folder (cleanup with `removeSource`); returns how many files
        went. Idempotent: a source already gone removes 0. Never removes SOURCE_ROOT itself.

        A local source is removed through directory descriptors opened from SOURCE_ROOT one name
        at a time, never following a symlink: no check made earlier can be outwitted by a path
        swapped afterwards, and nothing outside SOURCE_ROOT is ever touched. A symlink is removed
        itself (never its target); a symlink on the way to the source refuses the removal.
        """
        location = self.locate(ref)
        if location.path is None:
            return self._remove_s3(location)
        names = self._names_below_root(ref)
        if not names:
            raise _forbidden(ref, "it is SOURCE_ROOT itself")
        parent = os.open(self.root, _DIRECTORY)  # the root was resolved once, when configured
        try:
            for name in names[:-1]:
                child = _open_folder(name, parent)
                if child is None:
                    return 0
                if child == _NOT_A_FOLDER:
                    raise _forbidden(ref, f"{name!r} on its way is a symlink or a file, and cleanup never follows one")
                os.close(parent)
                parent = child
            return _remove_entry(names[-1], parent)
        finally:
            os.close(parent)

    def _names_below_root(self, ref: str) -> tuple[str, ...]:
        """The path of `ref` below SOURCE_ROOT as written (`locate` already refused `..`)."""
        path = PurePosixPath(ref)
        if path.is_absolute():
            for root in (self.root, self._given_root):
                if path == PurePosixPath(root) or PurePosixPath(root) in path.parents:
                    path = path.relative_to(root)
                    break
            else:
                raise _forbidden(ref, "it is not written as a path under SOURCE_ROOT")
        return tuple(name for name in path.parts if name not in ("", "."))

    # -- local ---------------------------------------------------------------------------------

    def _local_listing(self, folder: Path, ref: str) -> list[SourceEntry]:
        if not folder.is_dir():
            if folder.exists():
                raise _not_found(ref, "it is a file, not a folder")
            return []
        entries: list[SourceEntry] = []
        # `folder` is resolved inside the root and symlinked folders are not walked into, so only
        # a symlinked file can lead out: one lstat per file, a realpath only for links.
        for current, _dirs, files in os.walk(folder, onerror=_raise_walk_error(ref)):
            for name in files:
                path = os.path.join(current, name)
                relative = os.path.relpath(path, folder).replace(os.sep, "/")
                where = f"{ref.rstrip('/')}/{relative}"
                try:
                    stat = os.lstat(path)
                    if S_ISLNK(stat.st_mode):
                        path = os.path.realpath(path)
                        if self.root not in Path(path).parents:
                            raise _forbidden(where, "a symlink leads out of SOURCE_ROOT")
                        stat = os.stat(path)
                except OSError as error:
                    raise source_read_error(where, error) from error
                if S_ISREG(stat.st_mode):
                    entries.append(SourceEntry(relative, LocalFile(Path(path), stat.st_size, where)))
        return entries

    # -- s3 ------------------------------------------------------------------------------------

    def _client(self, ref: str) -> Any:
        if self.s3 is None:
            raise _forbidden(ref, "no client for the staging buckets is configured")
        return self.s3

    @staticmethod
    def _s3_location(location: SourceLocation) -> tuple[str, str]:
        assert location.bucket is not None and location.key is not None  # locate sets both for s3://
        return location.bucket, location.key

    def _s3_objects(self, location: SourceLocation) -> Iterator[tuple[str, int]]:
        bucket, key = self._s3_location(location)
        prefix = key.rstrip("/") + "/"
        pages = self._client(location.ref).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"], int(item["Size"])
        except ClientError as error:
            _raise_s3(location.ref, error)

    def _s3_listing(self, location: SourceLocation) -> list[SourceEntry]:
        bucket, key = self._s3_location(location)
        prefix = key.rstrip("/") + "/"
        client = self._client(location.ref)
        return [
            SourceEntry(object_key[len(prefix) :], S3File(client, bucket, object_key, size))
            for object_key, size in self._s3_objects(location)
            if not object_key.endswith("/")  # folder placeholders some tools create
        ]

    def _remove_s3(self, location: SourceLocation) -> int:
        bucket, key = self._s3_location(location)
        keys = [object_key for object_key, _size in self._s3_objects(location)]
        if not keys:
            try:
                self._client(location.ref).head_object(Bucket=bucket, Key=key)
            except ClientError as error:
                meaning = _s3_error(location.ref, error)
                if meaning is not None and meaning.code == ErrorCode.SOURCE_NOT_FOUND:
                    return 0
                _raise_s3(location.ref, error)
            keys = [key]
        client = self._client(location.ref)
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = [{"Key": object_key} for object_key in keys[start : start + 1000]]
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)


# --- Removing local sources without following links ---------------------------------------------

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY
_NOT_A_FOLDER = -1


def _open_folder(name: str, parent: int) -> int | None:
    """A descriptor of the folder `name` in `parent`; `_NOT_A_FOLDER` for a file or a symlink
    (O_NOFOLLOW: a link is never opened through), None when nothing has that name."""
    try:
        return os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            return _NOT_A_FOLDER
        raise


def _remove_entry(name: str, parent: int) -> int:
    """Remove `name` from the folder `parent`: a folder with everything in it, a file, or a
    symlink itself. Returns the files removed (a link counts as a file unless it names a folder)."""
    folder = _open_folder(name, parent)
    if folder is None:
        return 0
    if folder == _NOT_A_FOLDER:
        counts = not _names_a_folder(name, parent)
        try:
            os.unlink(name, dir_fd=parent)  # unlink never follows a link: the link itself goes
        except FileNotFoundError:
            return 0
        return int(counts)
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries]
        removed = sum(_remove_entry(child, folder) for child in names)
    finally:
        os.close(folder)
    os.rmdir(name, dir_fd=parent)
    return removed


def _names_a_folder(name: str, parent: int) -> bool:
    """Whether a symlink points at a folder (only read, to count it as the old walk did)."""
    try:
        return S_ISDIR(os.stat(name, dir_fd=parent).st_mode)
    except OSError:  # a dangling link
        return False


def _raise_walk_error(ref: str) -> Callable[[OSError], None]:
    def on_error(error: OSError) -> None:
        raise source_read_error(ref, error) from error

    return on_error
