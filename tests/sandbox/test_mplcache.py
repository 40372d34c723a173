"""The host-built matplotlib font cache: built once, copied into each session, never shared."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeloop.sandbox import Sandbox, mplcache

pytest.importorskip("matplotlib")

PYPLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n1"


def session_cache(sb: Sandbox) -> Path:
    return sb.workdir.joinpath(*mplcache.SESSION_CACHE)


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user dir whose font cache is built once for this module's tests."""
    home = tmp_path_factory.mktemp("mpl-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CODELOOP_HOME", str(home))
        assert mplcache.build(sys.executable)
    return home


@pytest.fixture
def with_cache(built_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    monkeypatch.setenv("CODELOOP_HOME", str(built_home))
    files = mplcache.ready_files(sys.executable)
    assert files and all(f.name.startswith("fontlist-") for f in files)
    yield files


@pytest.mark.parametrize("jail", [True, False])
def test_a_new_session_reads_the_hosts_cache_and_does_not_rebuild_it(with_cache: list[Path], jail: bool) -> None:
    with Sandbox(jail=jail, prestart=False, timeout=120) as sb:
        copy = session_cache(sb) / with_cache[0].name
        assert copy.read_bytes() == with_cache[0].read_bytes()
        st = copy.stat()
        assert (st.st_uid, st.st_gid) == (sb.workdir.stat().st_uid, sb.workdir.stat().st_gid)  # the session's own
        before = st.st_mtime_ns
        result = sb.run(PYPLOT)
        assert result.ok, result.error
        assert len(result.figures) == 1
        assert copy.stat().st_mtime_ns == before  # matplotlib used it as is: no rebuild
        assert not (sb.workdir / ".cache" / "fontconfig").exists()  # nor a font scan (fc-list)
        assert result.files == []  # the cache is not the user's work


def test_each_session_gets_its_own_copy(with_cache: list[Path]) -> None:
    with Sandbox(timeout=30) as first, Sandbox(timeout=30) as second:
        name = with_cache[0].name
        spoiled = first.run(f"open('.cache/matplotlib/{name}', 'w').write('{{}}')")
        assert spoiled.ok, spoiled.error
        assert (session_cache(second) / name).read_bytes() == with_cache[0].read_bytes()
        assert with_cache[0].read_text(encoding="utf-8") != "{}"  # the host's copy is untouched


def test_seeding_never_follows_a_link_out_of_the_session(with_cache: list[Path], tmp_path: Path) -> None:
    session, outside = tmp_path / "session", tmp_path / "outside"
    session.mkdir()
    outside.mkdir()
    (session / ".cache").symlink_to(outside)
    assert not mplcache.seed(session, sys.executable)
    assert list(outside.iterdir()) == []


def test_a_stale_cache_is_rebuilt(with_cache: list[Path]) -> None:
    stamp_path = with_cache[0].parent / "stamp.json"
    stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    stamp_path.write_text(json.dumps({**stamp, "mtime_ns": 1}), encoding="utf-8")  # another install
    assert mplcache.build(sys.executable)
    assert json.loads(stamp_path.read_text(encoding="utf-8"))["mtime_ns"] == stamp["mtime_ns"]


def test_the_first_session_that_plots_starts_the_build() -> None:
    assert mplcache.ready_files(sys.executable) == []  # a fresh user dir (autouse fixture)
    with Sandbox(timeout=120) as sb:
        result = sb.run(PYPLOT)
        assert result.ok, result.error
    deadline = time.monotonic() + 120
    while not mplcache.build_settled(sys.executable) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mplcache.ready_files(sys.executable)
    with Sandbox(timeout=30) as later:
        assert (session_cache(later) / mplcache.ready_files(sys.executable)[0].name).is_file()


def test_without_a_usable_user_dir_sessions_simply_go_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CODELOOP_HOME", str(blocker / "home"))  # cannot be created
    with Sandbox(timeout=30, prestart=False) as sb:  # a new directory (a pooled one may predate this test)
        assert sb.run("1").value == "1"
        assert not session_cache(sb).exists()
    assert mplcache.ready_files(sys.executable) == [] and not mplcache.build(sys.executable)
