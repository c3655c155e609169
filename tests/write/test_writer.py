"""Writers: file layout, key validation, atomic replacement, overwrite confirmation."""

from __future__ import annotations

import mmap
import os
import pty
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from shardstream import FileWriter, MsgpackReader, RawWriter, packb
from shardstream.errors import (
    DatasetExistsError,
    DuplicateKeyError,
    InvalidKeyError,
    MissingKeyError,
    NotADatasetFileError,
    ReservedKeyError,
    SampleEncodeError,
    SampleTooLargeError,
    WriterClosedError,
)
from shardstream.format.codec import MSGPACK_SIZE_LIMIT
from tests.conftest import write_samples

SUFFIXES = ["", ".offsets", ".keys", ".key_hashes", ".filter", ".xxh3", ".md5"]
#: the files the .md5 file lists, in its order (as datadings writes it: not the .xxh3 file)
MD5_LISTED = ["", ".offsets", ".keys", ".key_hashes", ".filter"]


def dataset_files(directory):
    return sorted(p.name for p in directory.iterdir())


def test_writes_the_seven_files_and_nothing_else(tmp_path, samples):
    write_samples(tmp_path / "d.msgpack", samples)
    assert dataset_files(tmp_path) == sorted(f"d.msgpack{s}" for s in SUFFIXES)
    offsets = np.fromfile(tmp_path / "d.msgpack.offsets", dtype=">u8")
    assert len(offsets) == len(samples) + 1
    assert offsets[0] == 0 and offsets[-1] == (tmp_path / "d.msgpack").stat().st_size
    md5_lines = (tmp_path / "d.msgpack.md5").read_text().splitlines()
    assert [line.split("  ")[1] for line in md5_lines] == [f"d.msgpack{s}" for s in MD5_LISTED]


def test_empty_dataset(tmp_path):
    write_samples(tmp_path / "e.msgpack", [])
    with MsgpackReader(tmp_path / "e.msgpack") as reader:
        assert len(reader) == 0
        assert list(reader) == []
        assert "x" not in reader


def test_small_buffering_gives_same_bytes(tmp_path, samples):
    write_samples(tmp_path / "a.msgpack", samples)
    write_samples(tmp_path / "b.msgpack", samples, buffering=100)
    for suffix in SUFFIXES[:-1]:
        a = (tmp_path / f"a.msgpack{suffix}").read_bytes()
        assert a == (tmp_path / f"b.msgpack{suffix}").read_bytes()


def test_raw_writer_copies_packed_samples(tmp_path, samples, dataset):
    with MsgpackReader(dataset) as reader, RawWriter(tmp_path / "raw.msgpack", disable=True) as w:
        for key, raw in reader.rawiter(yield_key=True):
            w.write(key, raw)
    assert (tmp_path / "raw.msgpack").read_bytes() == dataset.read_bytes()
    assert (tmp_path / "raw.msgpack.keys").read_bytes() == (
        tmp_path / "varied.msgpack.keys"
    ).read_bytes()


def test_prints_count_unless_disabled(tmp_path, capsys):
    with FileWriter(tmp_path / "p.msgpack", overwrite=True, file=sys.stderr) as w:
        w.write({"key": "a"})
    assert capsys.readouterr().out == "1 samples written\n"


# --- bad input -------------------------------------------------------------------------------


@pytest.fixture
def writer(tmp_path):
    w = FileWriter(tmp_path / "w.msgpack", disable=True)
    yield w
    w.abort()


def test_duplicate_key(writer):
    writer.write({"key": "a"})
    with pytest.raises(DuplicateKeyError, match=r"w\.msgpack: duplicate key 'a' not allowed"):
        writer.write({"key": "a", "other": 1})
    assert writer.written == 1


def test_duplicate_key_is_a_value_error_for_datadings_code(writer):
    writer.write({"key": "a"})
    with pytest.raises(ValueError):
        writer.write({"key": "a"})


@pytest.mark.parametrize("field", ["nd", "complex", b"nd"])
def test_reserved_field(writer, field):
    with pytest.raises(ReservedKeyError, match="reserved field name"):
        writer.write({"key": "a", field: 1})
    assert writer.written == 0


@pytest.mark.parametrize("key", [1, b"bytes", None, ("t",)])
def test_non_string_key(writer, key):
    with pytest.raises(InvalidKeyError, match="must be a str"):
        writer.write({"key": key})
    with pytest.raises(InvalidKeyError):
        RawWriter.write(writer, key, b"\x80")


def test_missing_key(writer):
    with pytest.raises(MissingKeyError, match="no 'key' field"):
        writer.write({"image": b""})
    with pytest.raises(KeyError):
        writer.write({})


def test_unencodable_value_names_key_and_file(writer):
    with pytest.raises(SampleEncodeError, match=r"w\.msgpack: sample 'a' cannot be encoded"):
        writer.write({"key": "a", "x": object()})
    writer.write({"key": "a", "x": 1})  # the failed sample left no trace
    assert writer.written == 1


def test_value_past_msgpack_size_limit(tmp_path, writer):
    # A sparse file maps 4 GiB of zeros without using memory or disk.
    huge = tmp_path / "sparse.bin"
    with open(huge, "wb") as f:
        f.truncate(MSGPACK_SIZE_LIMIT + 1)
    with open(huge, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)
        try:
            with pytest.raises(SampleTooLargeError, match="'big'.*size limits"):
                writer.write({"key": "big", "data": view})
            with pytest.raises(SampleTooLargeError, match="'raw' packs to 4294967296 bytes"):
                RawWriter.write(writer, "raw", view)
        finally:
            view.release()
    assert writer.written == 0


def test_output_is_a_directory(tmp_path):
    with pytest.raises(NotADatasetFileError, match="is a directory"):
        FileWriter(tmp_path, disable=True)


def test_write_after_close(tmp_path):
    w = FileWriter(tmp_path / "c.msgpack", disable=True)
    w.close()
    with pytest.raises(WriterClosedError, match="closed"):
        w.write({"key": "a"})


# --- atomicity -------------------------------------------------------------------------------


def snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_exception_mid_write_keeps_previous_dataset(tmp_path, samples):
    path = tmp_path / "d.msgpack"
    write_samples(path, samples[:5])
    before = snapshot(tmp_path)
    with (
        pytest.raises(RuntimeError, match="boom"),
        FileWriter(path, overwrite=True, disable=True) as w,
    ):
        for sample in samples:
            w.write(sample)
        raise RuntimeError("boom")
    assert snapshot(tmp_path) == before


def test_exception_mid_write_leaves_no_dataset_when_none_existed(tmp_path):
    with pytest.raises(DuplicateKeyError), FileWriter(tmp_path / "n.msgpack", disable=True) as w:
        w.write({"key": "a"})
        w.write({"key": "a"})
    assert list(tmp_path.iterdir()) == []


def test_unclosed_writer_cleans_up_its_temp_files(tmp_path):
    w = FileWriter(tmp_path / "g.msgpack", disable=True)
    w.write({"key": "a", "x": b"1" * 1000})
    del w
    assert list(tmp_path.iterdir()) == []


def test_kill_mid_write_keeps_previous_dataset(tmp_path, samples):
    path = tmp_path / "d.msgpack"
    write_samples(path, samples[:5])
    before = snapshot(tmp_path)
    script = textwrap.dedent(
        f"""
        from shardstream import FileWriter
        w = FileWriter({str(path)!r}, overwrite=True, disable=True, buffering=1)
        i = 0
        while True:
            w.write({{"key": str(i), "x": b"0" * 1000}})
            i += 1
            if i == 100:
                print("writing", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = snapshot(tmp_path)
    leftovers = [name for name in after if name not in before]
    assert leftovers and all(
        name.startswith(".d.msgpack.") and name.endswith((".tmp", ".lock")) for name in leftovers
    )
    assert {name: after[name] for name in before} == before
    with MsgpackReader(path) as reader:
        assert [s["key"] for s in reader] == [s["key"] for s in samples[:5]]
        assert reader.verify_data() and reader.verify_index()
    write_samples(path, samples[:3])  # the next write removes the dead writer's leftovers
    assert sorted(snapshot(tmp_path)) == sorted(before)


def test_replacement_is_complete_after_close(tmp_path, samples):
    path = tmp_path / "d.msgpack"
    write_samples(path, samples[:5])
    (tmp_path / "d.msgpack.index").write_bytes(b"\x80")  # stale legacy index of the old dataset
    write_samples(path, samples[5:9])
    with MsgpackReader(path) as reader:
        assert [s["key"] for s in reader] == [s["key"] for s in samples[5:9]]
        assert reader.verify_data() and reader.verify_index()
    assert dataset_files(tmp_path) == sorted(f"d.msgpack{s}" for s in SUFFIXES)


# --- overwrite confirmation ------------------------------------------------------------------


def test_existing_output_without_terminal_raises_without_asking(tmp_path, dataset):
    before = snapshot(tmp_path)
    script = f"from shardstream import FileWriter; FileWriter({str(dataset)!r}, disable=True)"
    proc = subprocess.run(
        [sys.executable, "-c", script], stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "DatasetExistsError" in proc.stderr and "overwrite=True" in proc.stderr
    assert "overwrite?" not in proc.stdout
    assert snapshot(tmp_path) == before


def test_existing_output_in_process_without_terminal(dataset):
    with pytest.raises(
        DatasetExistsError, match=r"varied\.msgpack: exists; pass overwrite=True"
    ) as info:
        FileWriter(dataset, disable=True)
    assert isinstance(info.value, FileExistsError)


def run_with_terminal(script: str, answers: bytes) -> tuple[int, str]:
    """Run ``script`` with a real pseudo-terminal as stdin/stdout and type ``answers``."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    output = b""
    os.write(leader, answers)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return proc.wait(timeout=30), output.decode(errors="replace")


@pytest.mark.parametrize(
    ("answers", "code", "expect", "kept"),
    [
        (b"n\n", 3, "FileExistsError", True),
        (b"a\n", 4, "KeyboardInterrupt", True),
        (b"maybe\nyes\n", 0, "You can choose yes, no, abort", False),
        (b"\n", 0, "[Y/n/a/?]", False),
    ],
)
def test_existing_output_on_terminal_asks(tmp_path, dataset, answers, code, expect, kept):
    before = snapshot(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        from shardstream import FileWriter
        try:
            with FileWriter({str(dataset)!r}, disable=True) as w:
                w.write({{"key": "new"}})
        except FileExistsError:
            print("FileExistsError"); sys.exit(3)
        except KeyboardInterrupt:
            print("KeyboardInterrupt"); sys.exit(4)
        """
    )
    returncode, output = run_with_terminal(script, answers)
    assert returncode == code, output
    assert "varied.msgpack exists, overwrite? [Y/n/a/?]" in output
    assert expect in output
    if kept:
        assert snapshot(tmp_path) == before
    else:
        with MsgpackReader(dataset) as reader:
            assert [s["key"] for s in reader] == ["new"]


def test_packb_of_sample_equals_file_bytes(tmp_path):
    sample = {"key": "a", "x": np.arange(3)}
    write_samples(tmp_path / "one.msgpack", [sample])
    assert (tmp_path / "one.msgpack").read_bytes() == packb(sample)


def test_raw_writer_keeps_what_it_was_given(tmp_path):
    buffer = bytearray(b"\x81\xa3key\xa1a")  # {"key": "a"}
    with RawWriter(tmp_path / "r.msgpack", disable=True) as w:
        w.write("a", buffer)
        buffer[:] = b"\x81\xa3key\xa1b"  # the caller reuses its buffer before close
        w.write("b", memoryview(buffer))
    with MsgpackReader(tmp_path / "r.msgpack") as reader:
        assert [s["key"] for s in reader] == ["a", "b"]


def committed_records(monkeypatch) -> list[dict]:
    """Collect every commit record while it is in place (read at its first roll-forward step)."""
    import json

    from shardstream.format import atomic

    records: list[dict] = []
    seen: set = set()

    def hook(action, path):
        for record in path.parent.glob(".*.commit"):
            if record not in seen:
                seen.add(record)
                records.append(json.loads(record.read_text()))

    monkeypatch.setattr(atomic, "fault_hook", hook)
    return records


def test_the_checksum_file_is_in_the_commit_record_before_the_md5_file(tmp_path, monkeypatch):
    records = committed_records(monkeypatch)
    write_samples(tmp_path / "d.msgpack", [{"key": f"k{i}", "x": i} for i in range(5)])
    assert len(records) == 1
    finals = [entry["final"] for entry in records[0]["files"]]
    assert finals == [f"d.msgpack{s}" for s in SUFFIXES]  # the order readers pin them in
    xxh3 = next(e for e in records[0]["files"] if e["final"] == "d.msgpack.xxh3")
    assert xxh3["bytes"] == 32 + 8 * 5 == (tmp_path / "d.msgpack.xxh3").stat().st_size
