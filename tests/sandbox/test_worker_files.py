"""The worker's file scan and reply frames, run in this process (the worker is one plain file)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from codeloop.sandbox.launcher import WORKER_SCRIPT


@pytest.fixture(scope="module")
def worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("codeloop_worker_under_test", WORKER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the worker keeps a reference to itself through sys.modules
    spec.loader.exec_module(module)
    return module


def test_the_scan_limit_counts_directories_too(worker: ModuleType, tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / f"d{i}").mkdir()
    (tmp_path / ".cache").mkdir()  # library caches in HOME are neither listed nor counted
    files = worker._Files(str(tmp_path))
    notes: list[str] = []
    assert files.changed(10, 100, notes) == []
    assert notes == ["the session directory has more than 10 entries; changes past them are not listed"]
    notes.clear()
    assert files.changed(21, 100, notes) == [] and notes == []


def test_an_empty_settled_directory_costs_one_stat_and_still_sees_a_new_file(
    worker: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    (tmp_path / ".cache").mkdir()
    time.sleep(0.1)
    files = worker._Files(str(tmp_path))
    assert files.empty_key is not None
    calls: list[str] = []
    real_stat, real_scandir = os.stat, os.scandir
    monkeypatch.setattr(os, "stat", lambda path, **kw: calls.append(f"stat {path}") or real_stat(path, **kw))
    monkeypatch.setattr(os, "scandir", lambda path: calls.append(f"scandir {path}") or real_scandir(path))
    assert files.changed(100, 100, []) == []
    assert calls == [f"stat {tmp_path}"]
    (tmp_path / "new.txt").write_text("x")
    assert files.changed(100, 100, []) == ["new.txt"]


def test_the_workers_canned_ok_reply_is_the_frame_the_host_expects(worker: ModuleType) -> None:
    import os

    from codeloop.sandbox.protocol import FrameReader, ok_reply_frame

    r, w = os.pipe()
    try:
        worker.send_reply(w, {"status": "ok"}, b"0123456789abcdef")
        frame = os.read(r, 100)
    finally:
        os.close(r)
        os.close(w)
    assert frame == ok_reply_frame("0123456789abcdef")
    assert FrameReader().feed(frame) == [{"status": "ok", "id": "0123456789abcdef"}]
