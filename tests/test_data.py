"""Tests of nasbench.data: file lookup, safe extraction, in-memory datasets, BatchLoader."""

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nasbench.data.cifar as cifar_mod
from nasbench.data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    COMPLETE_MARKER,
    MIRROR_ENV,
    BatchLoader,
    InMemoryImages,
    UnsafeArchiveError,
    cache_path,
    load_cifar10,
    load_imagefolder,
    resolve_dir_from_archive,
    resolve_file,
    safe_extract,
    cutout,
    shift_flip,
    split_train_val,
)
from nasbench.errors import DataNotFoundError, NasbenchError

REPO = Path(__file__).resolve().parents[1]


def _shared_data():
    candidates = []
    if os.environ.get(MIRROR_ENV):
        candidates.append(Path(os.environ[MIRROR_ENV]))
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if (c / "cifar10-jpg.tar.gz").is_file():
            return c
    return None


SHARED = _shared_data()
needs_real_data = pytest.mark.skipif(SHARED is None, reason="shared data (cifar10-jpg.tar.gz) not found")


# --------------------------------------------------------------------------- helpers


def _make_tar(path: Path, members: dict, mode="w:gz"):
    """members: name -> bytes (file) or None (directory)."""
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _synthetic(n=300, classes=10, hw=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, hw, hw), generator=g, dtype=torch.uint8)
    targets = torch.arange(n) % classes
    return InMemoryImages(images, targets, [f"c{i}" for i in range(classes)])


def _all(it):
    return [(x.clone(), y.clone()) for x, y in it]


def _same(a, b):
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2)
                                    for (x1, y1), (x2, y2) in zip(a, b))


# --------------------------------------------------------------------------- resolve_file


def test_resolve_file_local_beats_mirror(tmp_path, monkeypatch):
    root, mirror = tmp_path / "root", tmp_path / "mirror"
    (root / "sub").mkdir(parents=True)
    (mirror / "sub").mkdir(parents=True)
    (root / "sub" / "f.txt").write_text("local")
    (mirror / "sub" / "f.txt").write_text("mirror")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    p = resolve_file("sub/f.txt", root, url="http://127.0.0.1:9/never-used")
    assert p == root / "sub" / "f.txt" and p.read_text() == "local"


def test_resolve_file_copies_from_mirror(tmp_path, monkeypatch):
    root, mirror = tmp_path / "root", tmp_path / "mirror"
    (mirror / "a" / "b").mkdir(parents=True)
    (mirror / "a" / "b" / "x.bin").write_bytes(b"\x00\x01payload")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    p = resolve_file("a/b/x.bin", root)
    assert p == root / "a" / "b" / "x.bin" and p.read_bytes() == b"\x00\x01payload"
    assert sorted(os.listdir(p.parent)) == ["x.bin"]  # no temp file left behind
    # now local: found even without the mirror
    monkeypatch.delenv(MIRROR_ENV)
    assert resolve_file("a/b/x.bin", root) == p


def test_resolve_file_missing_raises_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    root = tmp_path / "root"
    with pytest.raises(DataNotFoundError) as err:
        resolve_file("bench/missing.json", root, upstream="https://example.org/missing.json")
    msg = str(err.value)
    assert str((root / "bench" / "missing.json").resolve()) in msg
    assert MIRROR_ENV in msg and "https://example.org/missing.json" in msg
    assert isinstance(err.value, NasbenchError) and isinstance(err.value, FileNotFoundError)


def test_resolve_file_failed_download_falls_through(tmp_path, monkeypatch):
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    url = "http://127.0.0.1:9/file.json"  # discard port: connection refused
    with pytest.raises(DataNotFoundError) as err:
        resolve_file("file.json", tmp_path / "root", url=url)
    msg = str(err.value)
    assert url in msg and "download failed" in msg and str(mirror) in msg
    assert not any((tmp_path / "root").glob("*"))  # no partial download


def test_resolve_file_from_archive_member(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _make_tar(mirror / "bundle.tar.gz", {"top/": None, "top/bench/b.json": b'{"a": 1}'})
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    p = resolve_file("bench/b.json", tmp_path / "root", archive="bundle.tar.gz")
    assert p.read_bytes() == b'{"a": 1}'


def test_resolve_file_rejects_escaping_paths(tmp_path):
    with pytest.raises(ValueError):
        resolve_file("../x", tmp_path)
    with pytest.raises(ValueError):
        resolve_file("/etc/passwd", tmp_path)


# --------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("bad", ["../evil.txt", "ok/../../evil.txt", "/tmp/nasbench-evil-abs.txt"])
def test_safe_extract_rejects_escaping_members(tmp_path, bad):
    arch = _make_tar(tmp_path / "bad.tar.gz", {"good.txt": b"fine", bad: b"evil"})
    dest = tmp_path / "out" / "inner"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(arch, dest)
    assert not (tmp_path / "out" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/nasbench-evil-abs.txt").exists()


def test_safe_extract_rejects_links(tmp_path):
    arch = tmp_path / "link.tar"
    with tarfile.open(arch, "w") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError):
        safe_extract(arch, tmp_path / "out")


def test_resolve_dir_from_archive(tmp_path, monkeypatch):
    mirror, root = tmp_path / "mirror", tmp_path / "root"
    mirror.mkdir()
    _make_tar(mirror / "tree.tar.gz", {"train/": None, "train/a.txt": b"A", "test/b.txt": b"B"})
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    d = resolve_dir_from_archive("mytree", "tree.tar.gz", root)
    assert d == root / "mytree"
    assert (d / "train" / "a.txt").read_bytes() == b"A" and (d / "test" / "b.txt").read_bytes() == b"B"
    assert (d / COMPLETE_MARKER).is_file()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp dirs left
    # complete tree: no archive needed any more
    monkeypatch.delenv(MIRROR_ENV)
    (root / "tree.tar.gz").unlink()
    assert resolve_dir_from_archive("mytree", "tree.tar.gz", root) == d
    # a tree without the marker and no archive -> clear error naming the marker
    (d / COMPLETE_MARKER).unlink()
    with pytest.raises(DataNotFoundError, match=COMPLETE_MARKER):
        resolve_dir_from_archive("mytree", "tree.tar.gz", root)


def test_resolve_dir_from_corrupt_archive(tmp_path):
    (tmp_path / "tree.tar.gz").write_bytes(b"not a tar archive at all")
    with pytest.raises(DataNotFoundError, match="corrupt"):
        resolve_dir_from_archive("mytree", "tree.tar.gz", tmp_path)
    assert not (tmp_path / "mytree").exists()


# --------------------------------------------------------------------------- ImageFolder


def _make_imagefolder(root: Path, classes=("cat", "ant", "dog", "bee"), per_class=5, hw=(6, 8)):
    expected = {}
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            rng = np.random.default_rng(1000 * k + i)
            arr = rng.integers(0, 256, size=(hw[0], hw[1], 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i:03d}.png")
            expected[(c, i)] = arr
    (root / "notes.txt").write_text("not an image dir entry")  # ignored (file, not class dir)
    return expected


def test_load_imagefolder_and_cache(tmp_path, monkeypatch):
    root = tmp_path / "train"
    expected = _make_imagefolder(root)
    ds = load_imagefolder(root)
    assert ds.classes == ["ant", "bee", "cat", "dog"]  # sorted
    assert ds.images.shape == (20, 3, 6, 8) and ds.images.dtype == torch.uint8
    assert ds.targets.dtype == torch.int64 and ds.targets.tolist() == [k for k in range(4) for _ in range(5)]
    # pixel-exact (PNG is lossless), CHW layout, sorted file order within a class
    assert np.array_equal(ds.images[5].permute(1, 2, 0).numpy(), expected[("bee", 0)])
    assert np.array_equal(ds.images[19].permute(1, 2, 0).numpy(), expected[("dog", 4)])
    assert cache_path(root) == tmp_path / "train.uint8.npz" and cache_path(root).is_file()

    # second load comes from the cache: decoding would fail now
    def no_decode(*a, **k):
        raise AssertionError("decoded again despite a valid cache")

    monkeypatch.setattr(cifar_mod, "_decode_all", no_decode)
    ds2 = load_imagefolder(root)
    assert torch.equal(ds2.images, ds.images) and torch.equal(ds2.targets, ds.targets)
    assert ds2.classes == ds.classes
    # changing the tree invalidates the cache
    Image.fromarray(expected[("ant", 0)]).save(root / "ant" / "999.png")
    with pytest.raises(AssertionError, match="decoded again"):
        load_imagefolder(root)
    monkeypatch.undo()
    assert len(load_imagefolder(root)) == 21
    # explicit class order
    ds3 = load_imagefolder(root, classes=["dog", "cat", "bee", "ant"])
    assert ds3.classes == ["dog", "cat", "bee", "ant"]
    assert ds3.targets[0] == 0 and ds3.targets[-1] == 3
    assert np.array_equal(ds3.images[0].permute(1, 2, 0).numpy(), expected[("dog", 0)])


def test_load_imagefolder_errors(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_imagefolder(tmp_path / "nope")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataNotFoundError):
        load_imagefolder(tmp_path / "empty")


def test_load_cifar10_missing_everything(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(DataNotFoundError) as err:
        load_cifar10(tmp_path / "root", "test", download=False)
    msg = str(err.value)
    assert "cifar10-jpg.tar.gz" in msg and MIRROR_ENV in msg
    assert str((tmp_path / "root" / "cifar10-jpg.tar.gz").resolve()) in msg
    with pytest.raises(ValueError):
        load_cifar10(tmp_path / "root", "val")


# --------------------------------------------------------------------------- real CIFAR-10


@pytest.fixture(scope="module")
def cifar_test(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MIRROR_ENV, str(SHARED))
        t = time.time()
        ds = load_cifar10(root, "test")
        first = time.time() - t
        t = time.time()
        again = load_cifar10(root, "test")
        second = time.time() - t
    return root, ds, again, first, second


@needs_real_data
def test_real_cifar10_test_split(cifar_test):
    root, ds, again, first, second = cifar_test
    assert ds.source == "cifar10-jpg"
    assert len(ds) == 10000 and ds.images.shape == (10000, 3, 32, 32)
    assert ds.images.dtype == torch.uint8 and ds.targets.dtype == torch.int64
    assert ds.classes == list(CIFAR10_CLASSES)
    assert ds.class_counts().tolist() == [1000] * 10
    assert (root / "cifar10" / COMPLETE_MARKER).is_file()
    assert (root / "cifar10" / "test.uint8.npz").is_file()
    assert torch.equal(again.images, ds.images) and torch.equal(again.targets, ds.targets)
    assert second < 5.0, f"cached load took {second:.1f} s (first {first:.1f} s)"
    # plausible statistics: close to the CIFAR-10 channel means
    mean = ds.images.float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor(CIFAR10_MEAN), atol=0.03)


# --------------------------------------------------------------------------- splits


def test_split_train_val_disjoint_deterministic_stratified():
    ds = _synthetic(n=1000, classes=10)
    ds.targets = torch.arange(1000) // 100  # sorted labels, 100 per class
    train, val = split_train_val(ds, 200, seed=3)
    assert len(train) == 800 and len(val) == 200
    assert val.class_counts().tolist() == [20] * 10 and train.class_counts().tolist() == [80] * 10
    # disjoint and complete: compare image bytes (random images are unique)
    keys = lambda d: {bytes(im.numpy().tobytes()) for im in d.images}  # noqa: E731
    ktr, kval = keys(train), keys(val)
    assert not ktr & kval and len(ktr | kval) == 1000
    # deterministic, seed-dependent, global RNG untouched
    torch.manual_seed(0)
    state = torch.get_rng_state()
    train2, val2 = split_train_val(ds, 200, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(val2.images, val.images) and torch.equal(train2.targets, train.targets)
    _, val3 = split_train_val(ds, 200, seed=4)
    assert not torch.equal(val3.images, val.images)
    # train_size: seeded subset of the remainder; fractions
    tr_small, val4 = split_train_val(ds, 0.1, seed=3, train_size=300)
    assert len(val4) == 100 and len(tr_small) == 300
    assert tr_small.class_counts().tolist() == [30] * 10
    assert not keys(tr_small) & keys(val4)
    tr_plain, val_plain = split_train_val(ds, 123, seed=1, stratified=False)
    assert len(val_plain) == 123 and len(tr_plain) == 877
    with pytest.raises(ValueError):
        split_train_val(ds, 900, seed=0, train_size=200)


# --------------------------------------------------------------------------- BatchLoader


def test_batchloader_shapes_normalisation_and_len():
    ds = _synthetic(n=300)
    loader = BatchLoader(ds, 64, shuffle=False, augment=False, drop_last=False)
    assert len(loader) == 5
    batches = _all(loader)
    assert [len(y) for _, y in batches] == [64, 64, 64, 64, 44]
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (64, 3, 32, 32) and y.dtype == torch.int64
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    assert torch.allclose(x * std + mean, ds.images[:64].float() / 255, atol=1e-5)
    assert torch.equal(y, ds.targets[:64])
    assert len(BatchLoader(ds, 64, shuffle=True, augment=True)) == 4
    with pytest.raises(TypeError):
        iter(BatchLoader(ds, 64, shuffle=True, augment=False))


def test_batchloader_deterministic_and_independent_of_global_rng():
    ds = _synthetic(n=300)
    torch.manual_seed(123)
    a = _all(BatchLoader(ds, 32, True, True, seed=7).epoch(2))
    torch.manual_seed(999)
    state = torch.get_rng_state()
    b = _all(BatchLoader(ds, 32, True, True, seed=7).epoch(2))
    assert torch.equal(torch.get_rng_state(), state)
    assert _same(a, b)
    c = _all(BatchLoader(ds, 32, True, True, seed=7).epoch(3))
    d = _all(BatchLoader(ds, 32, True, True, seed=8).epoch(2))
    assert not torch.equal(a[0][1], c[0][1]) and not torch.equal(a[0][1], d[0][1])
    # every epoch is a permutation: no sample repeated within an epoch
    loader = BatchLoader(ds, 30, True, False, seed=7)
    order = loader.order(5)
    assert sorted(order.tolist()) == list(range(300))
    ys = torch.cat([y for _, y in loader.epoch(5)])
    assert torch.equal(ys, ds.targets[order])


def test_batchloader_exact_resume():
    ds = _synthetic(n=300)
    loader = BatchLoader(ds, 32, True, True, seed=1)
    full = _all(loader.epoch(4))
    tail = _all(loader.epoch(4, start=3))
    assert len(full) == len(loader) == 9 and _same(full[3:], tail)
    assert _all(loader.epoch(4, start=len(loader))) == []
    with pytest.raises(ValueError):
        list(loader.epoch(4, start=len(loader) + 1))


@pytest.mark.parametrize("drop_last", [True, False])
def test_batchloader_sharding_matches_single_process(drop_last):
    ds = _synthetic(n=300)
    kw = dict(shuffle=True, augment=True, seed=5, drop_last=drop_last)
    single = _all(BatchLoader(ds, 64, **kw).epoch(1))
    r0 = _all(BatchLoader(ds, 64, rank=0, world_size=2, **kw).epoch(1))
    r1 = _all(BatchLoader(ds, 64, rank=1, world_size=2, **kw).epoch(1))
    assert len(single) == len(r0) == len(r1)
    for (xs, ys), (x0, y0), (x1, y1) in zip(single, r0, r1):
        assert torch.equal(torch.cat([x0, x1]), xs) and torch.equal(torch.cat([y0, y1]), ys)
    assert len(r0[0][1]) == 32
    # resume on a shard equals the shard's tail
    assert _same(_all(BatchLoader(ds, 64, rank=1, world_size=2, **kw).epoch(1, start=2)), r1[2:])
    with pytest.raises(ValueError, match="divisible"):
        BatchLoader(ds, 63, True, True, world_size=2)


def test_batchloader_augmentation_changes_images_keeps_content():
    ds = _synthetic(n=256)
    plain = torch.cat([x for x, _ in BatchLoader(ds, 64, True, False, seed=2).epoch(0)])
    aug = torch.cat([x for x, _ in BatchLoader(ds, 64, True, True, seed=2).epoch(0)])
    assert aug.shape == plain.shape and aug.dtype == plain.dtype
    same = [torch.equal(a, p) for a, p in zip(aug, plain)]
    assert sum(same) < len(same) // 4  # identity only for shift (0, 0) without flip: p = 1/162
    # every augmented image is some shift/flip of its original
    pad = 4
    raw = ds.images[BatchLoader(ds, 64, True, False, seed=2).order(0)].float()
    pix = (aug * torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
           + torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) * 255
    for k in range(8):
        found = False
        for dy in range(-pad, pad + 1):
            for dx in range(-pad, pad + 1):
                for f in (False, True):
                    ref = shift_flip(raw[k:k + 1], torch.tensor([dy]), torch.tensor([dx]),
                                     torch.tensor([f]), pad)
                    found |= torch.allclose(ref, pix[k:k + 1], atol=1e-3)
        assert found


def test_shift_flip_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 32, 32), generator=g, dtype=torch.uint8)
    zero = torch.zeros(6, dtype=torch.int64)
    no = torch.zeros(6, dtype=torch.bool)
    assert torch.equal(shift_flip(x, zero, zero, no), x)  # zero offset = original
    assert torch.equal(shift_flip(x, zero, zero, ~no), x.flip(-1))
    # compare with pad + crop + flip done image by image (torchvision semantics)
    dy = torch.tensor([-4, -1, 0, 2, 4, 3])
    dx = torch.tensor([4, 0, -3, 1, -4, 2])
    flip = torch.tensor([True, False, True, False, True, False])
    out = shift_flip(x, dy, dx, flip, pad=4)
    padded = torch.nn.functional.pad(x.float(), (4, 4, 4, 4)).to(torch.uint8)
    for i in range(6):
        oy, ox = 4 + int(dy[i]), 4 + int(dx[i])
        ref = padded[i, :, oy:oy + 32, ox:ox + 32]
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i], ref)
    assert out.dtype == torch.uint8 and out.shape == x.shape


# --------------------------------------------------------------------------- tool


def test_prepare_data_missing_archive_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != MIRROR_ENV}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "prepare_data.py"),
         "--archive", str(tmp_path / "nope" / "cifar10-jpg.tar.gz"), "--root", str(tmp_path / "data")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cifar10-jpg.tar.gz" in lines[0] and "not found" in lines[0]


# --------------------------------------------------------------------------- Cutout


def _darts_cutout(img: np.ndarray, y: int, x: int, length: int) -> np.ndarray:
    """DARTS ``utils.Cutout.__call__`` (cnn/utils.py) with the centre given instead of drawn."""
    h, w = img.shape[1], img.shape[2]
    mask = np.ones((h, w), np.float32)
    y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
    x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
    mask[y1:y2, x1:x2] = 0.0
    return img * mask[None]


@pytest.mark.parametrize("length", [16, 5, 1])
def test_cutout_is_dartss_cutout(length):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, 7, 9, generator=g) + 5.0
    cy, cx = torch.randint(0, 7, (40,), generator=g), torch.randint(0, 9, (40,), generator=g)
    cy[:4], cx[:4] = torch.tensor([0, 6, 0, 6]), torch.tensor([0, 8, 8, 0])  # the corners
    out = cutout(x.clone(), cy, cx, length)
    ref = np.stack([_darts_cutout(x[b].numpy(), int(cy[b]), int(cx[b]), length) for b in range(40)])
    assert np.array_equal(out.numpy(), ref)
    assert torch.equal(cutout(x.clone(), cy, cx, 0), x)


def _cut_boxes(x):
    """Per image the zeroed rectangle ``(y1, y2, x1, x2)``; asserts the zeros form one rectangle in all channels."""
    zero = x == 0
    assert torch.equal(zero, zero[:, :1].expand_as(zero))
    m = zero[:, 0]
    rows, cols = m.any(2), m.any(1)
    assert torch.equal(m, rows[:, :, None] & cols[:, None, :])
    boxes = []
    for r, c in zip(rows, cols):
        ry, rx = r.nonzero().flatten(), c.nonzero().flatten()
        assert len(ry) == int(ry[-1] - ry[0]) + 1 and len(rx) == int(rx[-1] - rx[0]) + 1  # contiguous
        boxes.append((int(ry[0]), int(ry[-1]) + 1, int(rx[0]), int(rx[-1]) + 1))
    return boxes


def test_batchloader_cutout_counts_positions_and_determinism():
    """Length 16 on 32x32: one square per image (clipped at the borders), centres uniform over the
    32 x 32 pixels, zeroed after normalisation; the draws are a function of (seed, epoch, batch)."""
    n = 4096
    white = InMemoryImages(torch.full((n, 3, 32, 32), 255, dtype=torch.uint8), torch.zeros(n, dtype=torch.int64),
                           ["c"])
    # mean 0.5: image pixels normalise to 0.5 and the crop's zero padding to -0.5, so 0 marks the cut only
    kw = dict(shuffle=True, augment=True, seed=3, mean=(0.5,) * 3, std=(1.0,) * 3)
    x = torch.cat([b for b, _ in BatchLoader(white, 512, cutout=16, **kw).epoch(0)])
    boxes = _cut_boxes(x)
    cys = np.array([y1 + 8 if y1 > 0 else y2 - 8 for y1, y2, _, _ in boxes])  # the centre, from the clipped box
    cxs = np.array([x1 + 8 if x1 > 0 else x2 - 8 for _, _, x1, x2 in boxes])
    counts = np.array([(y2 - y1) * (x2 - x1) for y1, y2, x1, x2 in boxes])
    side = lambda c: np.minimum(c + 8, 32) - np.maximum(c - 8, 0)  # noqa: E731
    assert np.array_equal(counts, side(cys) * side(cxs))
    assert counts.max() == 256 and counts.min() == 64  # a full square; a corner quarter
    # E[count] = E[side]^2 = (448 / 32)^2 = 196 pixels for a uniform centre
    assert abs(counts.mean() - 196) < 3
    for c in (cys, cxs):  # uniform over 0..31: chi-square (31 dof) below its 0.1% point
        hist = np.bincount(c, minlength=32)
        assert len(hist) == 32 and ((hist - n / 32) ** 2 / (n / 32)).sum() < 61.1
    assert abs(np.corrcoef(cys, cxs)[0, 1]) < 0.05
    # cutout draws come after the crop/flip draws: outside the square the images are those without cutout
    plain = torch.cat([b for b, _ in BatchLoader(white, 512, **kw).epoch(0)])
    assert torch.equal(torch.where(x == 0, plain, x), plain)
    # deterministic per (seed, epoch, batch): rerun, resume mid-epoch, shards; other seeds/epochs differ
    ds = _synthetic(n=300)
    kw = dict(shuffle=True, augment=True, seed=7, cutout=16)
    a = _all(BatchLoader(ds, 32, **kw).epoch(2))
    torch.manual_seed(1)
    assert _same(a, _all(BatchLoader(ds, 32, **kw).epoch(2)))
    assert _same(a[3:], _all(BatchLoader(ds, 32, **kw).epoch(2, start=3)))
    r0 = _all(BatchLoader(ds, 32, rank=0, world_size=2, **kw).epoch(2))
    r1 = _all(BatchLoader(ds, 32, rank=1, world_size=2, **kw).epoch(2))
    assert all(torch.equal(torch.cat([x0, x1]), xs) for (xs, _), (x0, _), (x1, _) in zip(a, r0, r1))
    other = _all(BatchLoader(ds, 32, **{**kw, "seed": 8}).epoch(2))
    assert not torch.equal(a[0][0] == 0, other[0][0] == 0)
    with pytest.raises(TypeError):
        iter(BatchLoader(ds, 32, shuffle=False, augment=False, cutout=16))
    with pytest.raises(ValueError, match="cutout"):
        BatchLoader(ds, 32, True, True, cutout=-1)


def test_cutout_is_on_in_the_paper_retraining_only():
    """``retrain.cutout`` reaches the retraining loader only; the paper BNAS-v2 configs set 16."""
    from nasbench.config import load_config
    from nasbench.engine.dist import DistInfo
    from nasbench.pipeline.common import make_loader
    repo = Path(__file__).resolve().parents[1]
    for name in ("cifar10.yaml", "cifar10_pc.yaml", "cifar10_unrolled.yaml"):
        cfg = load_config(repo / "configs/bnas_v2" / name)
        assert cfg.retrain.cutout == 16, name
    assert load_config(repo / "configs/bnas_v2/cifar10_cpu.yaml").retrain.cutout == 0
    one = DistInfo(0, 1, 0, torch.device("cpu"))
    ds = _synthetic(n=64)
    assert make_loader(cfg, ds, True, one, cutout=cfg.retrain.cutout).cutout == 16
    assert make_loader(cfg, ds, True, one).cutout == 0 and make_loader(cfg, ds, False, one, cutout=16).cutout == 0
