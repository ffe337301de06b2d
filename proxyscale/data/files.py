"""One path for reading input bytes: every input file the workflow reads (sources, test sets, image
files) is opened here, so every kind of damage becomes one :class:`DataError` naming the file.

- Missing, a directory, unreadable or empty: said so before any byte is read.
- Compression follows the name (``.xz``, ``.gz``, ``.bz2``); bytes that are not that compression (or
  compressed bytes under a plain name) are said so from the file's first bytes, with what they look like.
- Compressed data cut off or corrupt midway: said so with how much decompressed data came before.
- Text that is not in the expected encoding (UTF-8 unless an entry sets ``encoding``): the line and byte
  offset of the first bad byte, and the options that exist (re-encode the file, ``encoding: <codec>``,
  or ``decode_errors: replace``, which replaces undecodable bytes only where the config asks for it).
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import gzip
import io
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path

from proxyscale.errors import DataError

COMPRESSIONS = {".xz": ("xz", lzma.open), ".gz": ("gzip", gzip.open), ".bz2": ("bzip2", bz2.open)}
MAGIC = {"xz": b"\xfd7zXZ\x00", "gzip": b"\x1f\x8b", "bzip2": b"BZh"}
DECODE_ERRORS = ("strict", "replace")
_COMPRESSION_ERRORS = (EOFError, lzma.LZMAError, zlib.error, OSError)  # gzip.BadGzipFile and bz2's are OSErrors


class _Counting(io.BufferedIOBase):
    """A read-only binary stream that counts the bytes it hands out (the position an error is reported at)."""

    def __init__(self, raw):
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def read(self, size=-1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def read1(self, size=-1) -> bytes:
        data = self.raw.read1(size)
        self.count += len(data)
        return data

    def close(self) -> None:
        self.raw.close()
        super().close()


def compression_in(head: bytes) -> str | None:
    """The compression a file's first bytes show (None: none of :data:`MAGIC`)."""
    return next((name for name, magic in MAGIC.items() if head.startswith(magic)), None)


def looks_like(head: bytes) -> str:
    """What a file's first bytes look like: a compression, text or binary data."""
    if kind := compression_in(head):
        return f"{kind}-compressed data"
    try:
        head.decode("utf-8")
        return "plain text"
    except UnicodeDecodeError as exc:
        return "plain text" if exc.start > len(head) - 4 else "binary or non-UTF-8 data"


def compression_of(path: Path) -> str | None:
    """The compression a file's name promises (None: plain)."""
    return COMPRESSIONS[path.suffix][0] if path.suffix in COMPRESSIONS else None


def check_file(path: str | Path) -> Path:
    """``path`` as a Path, once it is a non-empty readable file whose first bytes match its name's compression."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise DataError(f"{path}: empty file (0 bytes)")
    promised, found = compression_of(path), compression_in(head)
    if promised and found != promised:
        raise DataError(
            f"{path}: named {path.suffix} but is not {promised}-compressed (it looks like {looks_like(head)}); "
            "fix the name or fetch the file again"
        )
    if found and not promised:
        suffix = next(s for s, (name, _) in COMPRESSIONS.items() if name == found)
        raise DataError(
            f"{path}: is {found}-compressed data but its name has no {suffix} ending; rename it to end in {suffix}"
        )
    return path


VERIFY_BYTES = 1 << 28
"""How far (decompressed) a compressed file is read through to tell corrupt data from a reader's symptom."""


def _first_compression_damage(path: Path) -> DataError | None:
    """The damage met reading a compressed file's data through (up to :data:`VERIFY_BYTES`), or None.

    Corrupt compressed data often decompresses to garbage before the decompressor notices, so a reader
    may fail first on what it reads (bad UTF-8, broken JSON); that symptom is reported only when the
    compressed data reads cleanly."""
    if not compression_of(path):
        return None
    with _Counting(_open_decompressed(path)) as f:
        try:
            while f.read(1 << 20) and f.count < VERIFY_BYTES:
                pass
        except _COMPRESSION_ERRORS as exc:
            return _compression_damage(path, exc, f.count)
    return None


def _compression_damage(path: Path, exc: Exception, count: int) -> DataError:
    kind = compression_of(path) or "file"
    truncated = isinstance(exc, EOFError)
    what = "ends early (the file is cut off)" if truncated else f"is corrupt ({type(exc).__name__}: {exc})"
    return DataError(
        f"{path}: {kind} data {what} after {count:,} bytes of decompressed data; fetch or copy the file again"
    )


def _line_of(path: Path, offset: int) -> int:
    """1-based line number of decompressed byte ``offset``."""
    lines, seen = 1, 0
    with _open_decompressed(path) as f:
        while seen < offset:
            block = f.read(min(1 << 20, offset - seen))
            if not block:
                break
            lines += block.count(b"\n")
            seen += len(block)
    return lines


def _decode_damage(path: Path, exc: UnicodeDecodeError, count: int, encoding: str) -> DataError:
    offset = count - len(exc.object) + exc.start
    byte = exc.object[exc.start : exc.start + 1].hex()
    return DataError(
        f"{path}:{_line_of(path, offset)}: not {encoding} text (byte 0x{byte} at byte offset {offset:,}); "
        f"re-encode the file as {encoding}, or set encoding: <its codec, e.g. latin-1> or decode_errors: replace "
        "in its config entry"
    )


def _open_decompressed(path: Path):
    opener = COMPRESSIONS[path.suffix][1] if path.suffix in COMPRESSIONS else open
    return opener(path, "rb")


@contextlib.contextmanager
def open_binary(path: str | Path) -> Iterator[io.BufferedIOBase]:
    """The decompressed bytes of an input file; any damage met while the block reads is a :class:`DataError`."""
    path = check_file(path)
    with _Counting(_open_decompressed(path)) as f:
        try:
            yield f
        except _COMPRESSION_ERRORS as exc:
            raise _compression_damage(path, exc, f.count) from None
        except DataError:  # what was read may be garbage from corrupt compressed data
            if damage := _first_compression_damage(path):
                raise damage from None
            raise


@contextlib.contextmanager
def open_text(path: str | Path, encoding: str = "utf-8", decode_errors: str = "strict") -> Iterator[io.TextIOBase]:
    """A possibly compressed text file (a UTF-8 byte-order mark dropped, newlines left as they are);
    undecodable bytes are an error naming the line, unless ``decode_errors`` is ``replace``."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"{path}: encoding '{encoding}' is not a codec Python knows") from None
    if decode_errors not in DECODE_ERRORS:
        raise DataError(f"{path}: decode_errors '{decode_errors}' is not one of {', '.join(DECODE_ERRORS)}")
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, "utf-8-sig" if codec == "utf-8" else codec, decode_errors, newline="")
        try:
            yield text
        except UnicodeDecodeError as exc:
            raise _decode_damage(Path(path), exc, raw.count, encoding) from None
        finally:
            text.detach()


def read_bytes(path: str | Path) -> bytes:
    """The whole decompressed content of a (small) binary input file."""
    with open_binary(path) as f:
        return f.read()
