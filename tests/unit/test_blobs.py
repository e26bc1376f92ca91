"""The content-addressed blob store on a real folder: stored once, read back, written atomically."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.errors import TransientError
from gateway.store.blobs import BlobCorruptError, BlobNotFoundError, BlobStore, FileBlobStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_put_returns_the_sha256_and_get_gives_the_bytes_back(tmp_path: Path) -> None:
    store: BlobStore = FileBlobStore(tmp_path)
    data = b"\x89PNG\r\n\x1a\n pretend picture"

    sha256 = store.put(data)

    assert sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists(sha256)
    assert store.get(sha256) == data


def test_layout_fans_out_by_the_first_four_hex_digits(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)

    sha256 = store.put(b"layout")

    assert files_under(tmp_path) == [tmp_path / sha256[:2] / sha256[2:4] / sha256]
    assert store.path_of(sha256) == tmp_path / sha256[:2] / sha256[2:4] / sha256


def test_same_bytes_twice_are_stored_once(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)

    first = store.put(b"same picture")
    mtime = store.path_of(first).stat().st_mtime_ns
    second = FileBlobStore(tmp_path).put(b"same picture")

    assert first == second
    assert len(files_under(tmp_path)) == 1
    assert store.path_of(first).stat().st_mtime_ns == mtime  # not rewritten


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)

    names = {store.put(bytes([n]) * (n * 1000)) for n in range(20)}

    assert {path.name for path in files_under(tmp_path)} == names
    assert not [path for path in tmp_path.rglob(".*")]


def test_empty_blob_round_trips(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)

    assert store.get(store.put(b"")) == b""


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..",
        "",
        "/etc/passwd",
        "ab/../../../../etc/passwd",
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "a" * 63 + "\n",
        "a" * 62 + "/a",
    ],
)
def test_a_name_that_is_not_a_hash_is_refused(tmp_path: Path, name: str) -> None:
    store = FileBlobStore(tmp_path / "blobs")

    with pytest.raises(ValueError, match="SHA-256"):
        store.get(name)
    with pytest.raises(ValueError, match="SHA-256"):
        store.exists(name)


def test_missing_blob(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    absent = hashlib.sha256(b"never stored").hexdigest()

    assert not store.exists(absent)
    with pytest.raises(BlobNotFoundError):
        store.get(absent)


def test_damaged_blob_is_reported_not_served(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    sha256 = store.put(b"original")
    store.path_of(sha256).write_bytes(b"bit rot")

    with pytest.raises(BlobCorruptError):
        store.get(sha256)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "remove"])
def test_storing_the_same_bytes_again_repairs_a_damaged_copy(tmp_path: Path, damage: str) -> None:
    store = FileBlobStore(tmp_path)
    data = bytes(range(256)) * 8
    sha256 = store.put(data)
    path = store.path_of(sha256)
    if damage == "flip a byte":
        damaged = bytearray(data)
        damaged[100] ^= 0x01
        path.write_bytes(bytes(damaged))
    elif damage == "truncate":
        path.write_bytes(data[:10])
    else:
        path.unlink()

    assert store.put(data) == sha256

    assert store.get(sha256) == data
    assert len(files_under(tmp_path)) == 1


def test_unwritable_root_is_a_transient_error(tmp_path: Path) -> None:
    root = tmp_path / "not-a-folder"
    root.write_bytes(b"a file where the folder should be")

    with pytest.raises(TransientError, match="cannot store blob"):
        FileBlobStore(root).put(b"data")


def test_a_write_cut_off_midway_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    # A real failure in the middle of writing: the file size limit stops the write after 4 KiB.
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(PROJECT_ROOT)!r})
        from gateway.errors import TransientError
        from gateway.store.blobs import FileBlobStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = FileBlobStore(Path({str(tmp_path)!r}))
        store.put(b"small")
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            store.put(b"x" * 100_000)
        except TransientError as exc:
            print("refused:", exc)
        """
    )

    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert completed.stdout.startswith("refused: cannot store blob"), completed.stderr
    big = hashlib.sha256(b"x" * 100_000).hexdigest()
    store = FileBlobStore(tmp_path)
    assert not store.exists(big)
    assert [path.name for path in files_under(tmp_path)] == [hashlib.sha256(b"small").hexdigest()]
