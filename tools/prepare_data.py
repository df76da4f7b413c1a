"""Prepare CIFAR-10 under a data root: extract the JPEG tree and build the decoded caches.

    python tools/prepare_data.py --archive PATH/cifar10-jpg.tar.gz --root data
    python tools/prepare_data.py --root data     # archive from $NASBENCH_MIRROR,
                                                 # else torchvision download

Result: ``ROOT/cifar10/{train,test}/<class>/*.jpg`` plus the decoded uint8
caches ``ROOT/cifar10/{train,test}.uint8.npz`` that later runs load in about a
second. Exits with status 2 and a one-line message when the data is missing.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tarfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a fresh clone

from nasbench.data import (  # noqa: E402
    CIFAR10_JPG_ARCHIVE,
    CIFAR10_JPG_DIR,
    COMPLETE_MARKER,
    load_cifar10,
)
from nasbench.data.files import fix_mode, safe_extract  # noqa: E402
from nasbench.errors import DataNotFoundError, NasbenchError  # noqa: E402


def extract_archive(archive: Path, root: Path) -> Path:
    """Extract ``archive`` into ``root/cifar10`` (atomically, with the completion marker)."""
    import shutil
    import tempfile

    target = root / CIFAR10_JPG_DIR
    if (target / COMPLETE_MARKER).is_file():
        return target
    if not archive.is_file():
        raise DataNotFoundError(f"archive {archive.resolve()} not found (expected {CIFAR10_JPG_ARCHIVE}, "
                                f"CIFAR-10 as a JPEG tree train/<class>/*.jpg, test/<class>/*.jpg)")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.extract.", dir=root))
    try:
        try:
            safe_extract(archive, tmp)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataNotFoundError(f"archive {archive.resolve()} is corrupt or not a tar "
                                    f"archive ({exc})") from None
        for split in ("train", "test"):
            if not (tmp / split).is_dir():
                raise DataNotFoundError(f"{archive} has no top-level '{split}/' directory; "
                                        f"is it {CIFAR10_JPG_ARCHIVE}?")
        (tmp / COMPLETE_MARKER).write_text("")
        fix_mode(tmp, is_dir=True)
        if target.exists():  # tree without marker: interrupted earlier extraction
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=None,
                        help=f"path of {CIFAR10_JPG_ARCHIVE} (default: look in ROOT, "
                             "$NASBENCH_MIRROR, then download the binary CIFAR-10 via torchvision)")
    parser.add_argument("--root", type=Path, default=Path("data"), help="data root (default: data)")
    args = parser.parse_args(argv)
    t0 = time.time()
    try:
        if args.archive is not None:
            extract_archive(args.archive, args.root)
        counts = {}
        source = ""
        for split in ("train", "test"):
            ds = load_cifar10(args.root, split)
            counts[split] = len(ds)
            source = ds.source
    except (NasbenchError, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        print(f"prepare_data: error: {exc}", file=sys.stderr)
        return 2
    where = args.root / (CIFAR10_JPG_DIR if source == "cifar10-jpg" else "cifar-10-batches-py")
    print(f"CIFAR-10 ready ({source}): train {counts['train']} images, test {counts['test']} "
          f"images, 10 classes, in {where} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
