"""codeloop's own housekeeping never touches what it did not create (#12 items 1, 2, 6, 11).

Cleanup, restart and the uid locks are steered here by what a session (or an ordinary mishap)
leaves behind: a vanished directory, a hard link to a host file, a 1500-deep tree, symlinks and
unreadable directories, a planted lock directory. Every verdict is the host's own view of
canaries this test made: their owner, mode and contents on disk.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hostside import SANDBOX_PYTHON, session_uid, status, worker_pid

from codeloop import Sandbox
from codeloop.errors import SandboxError
from codeloop.sandbox import spawn
from codeloop.sandbox.jail import jailer, uids

Need = Callable[..., None]
Open = Callable[..., Sandbox]


@pytest.fixture
def root() -> Iterator[Path]:
    """A sandbox root of our own, mode 0755: its mode and contents are the canary. Directly in
    /tmp, so a session uid can reach it on a host without namespaces (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="codeloop-test-root-"))
    path.chmod(0o755)
    yield path
    _remove_deep(path)


def test_closing_a_session_whose_directory_vanished_leaves_its_parent_alone(open_sandbox: Open, root: Path) -> None:
    """Item 1: the caller (or a tmp cleaner) removed the session directory; close must not
    chmod the directory that held it (the sandbox root, /tmp by default)."""
    sb = open_sandbox(root=root)
    assert sb.run("open('x', 'w').write('1')").ok
    shutil.rmtree(sb.workdir)
    sb.close()
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert list(root.iterdir()) == []


def test_session_directory_is_inside_a_private_holder_the_session_cannot_rename(open_sandbox: Open, root: Path) -> None:
    sb = open_sandbox(root=root)
    holder = sb.workdir.parent
    st = holder.stat()
    assert st.st_uid == os.geteuid() and not st.st_mode & 0o022 and holder.parent == root
    r = sb.run("import os\nos.rename(os.getcwd(), os.getcwd() + '-moved')")
    assert r.status == "error"
    assert sb.workdir.is_dir() and not Path(str(sb.workdir) + "-moved").exists()


def _remove_deep(path: Path) -> None:
    """Remove a deep tree a failed test may have left (pytest's rmtree would hit RecursionError)."""
    if path.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def test_remove_tree_walks_by_descriptor_and_never_follows_links(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Items 1 and 6 at the unit level: unreadable and read-only directories, symlinks to a
    canary directory and file, a 1500-deep chain: all gone, the canaries untouched."""
    from codeloop.sandbox import hostfs

    canary_dir = tmp_path / "canary"
    canary_dir.mkdir()
    canary_dir.chmod(0o755)
    (canary_dir / "keep.txt").write_text("keep")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "to-dir").symlink_to(canary_dir)
    (tree / "to-file").symlink_to(canary_dir / "keep.txt")
    locked = tree / "locked"
    locked.mkdir()
    (locked / "inner.txt").write_text("x")
    (locked / "sub").mkdir()
    (locked / "sub").chmod(0o000)
    locked.chmod(0o500)
    request.addfinalizer(lambda: _remove_deep(tree))  # never leave a tree pytest's own cleanup cannot remove
    deep = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1500):
            os.mkdir("d", 0o700, dir_fd=deep)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=deep)
            os.close(deep)
            deep = nxt
        os.symlink(str(canary_dir), "link", dir_fd=deep)
    finally:
        os.close(deep)
    hostfs.remove_tree(tree)
    assert not tree.exists()
    assert (canary_dir / "keep.txt").read_text() == "keep"
    assert stat.S_IMODE(canary_dir.stat().st_mode) == 0o755
    hostfs.remove_tree(tree)  # already gone: counts as removed


def test_remove_tree_leaves_a_link_in_place_of_the_tree_alone(tmp_path: Path) -> None:
    from codeloop.sandbox import hostfs

    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep")
    (tmp_path / "tree").symlink_to(canary)
    hostfs.remove_tree(tmp_path / "tree")
    assert (canary / "keep.txt").read_text() == "keep"


@pytest.mark.slow
def test_a_1500_deep_tree_does_not_break_restart_or_close(
    open_sandbox: Open, root: Path, request: pytest.FixtureRequest
) -> None:
    """Item 6: restart and close walk iteratively; the directory is removed."""
    sb = open_sandbox(root=root, timeout=30)
    request.addfinalizer(lambda: _remove_deep(root))  # never leave a tree pytest's own cleanup cannot remove
    r = sb.run(
        "import os\nfd = os.open('.', os.O_RDONLY)\n"
        "for _ in range(1500):\n    os.mkdir('d', dir_fd=fd)\n"
        "    nxt = os.open('d', os.O_RDONLY, dir_fd=fd)\n    os.close(fd)\n    fd = nxt\n"
        "os.chmod('d', 0o500)\n"
    )
    assert r.ok, r
    sb.restart()
    assert sb.run("1 + 1").value == "2"
    sb.close()
    assert list(root.iterdir()) == []


def test_restart_never_chowns_a_hard_link_to_a_host_file(open_sandbox: Open, need: Need, tmp_path: Path) -> None:
    """Item 2: a session (on a host without namespaces and Landlock) can hard-link a host file
    into its directory; the host places that link itself here. Restarting must not hand the
    linked file to the session uid: the session keeps its uid, and nothing is chowned again."""
    need("uid")
    canary = tmp_path / "host-file"
    canary.write_text("host data")
    before = canary.stat()
    sb = open_sandbox()
    uid = session_uid(sb)
    first = worker_pid(sb)
    os.link(canary, sb.workdir / "link")
    sb.restart()
    assert worker_pid(sb) != first
    assert session_uid(sb) == uid  # one uid for the session's whole life
    after = canary.stat()
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    r = sb.run("1/0")  # a crash-free restart path too: a failed cell keeps the worker
    assert r.status == "error"
    assert sb.run("import os\nos.kill(os.getpid(), 9)").restarted
    assert canary.stat().st_uid == before.st_uid and session_uid(sb) == uid


def test_chown_of_a_fresh_tree_skips_links_and_what_we_do_not_own(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    from codeloop.sandbox import hostfs

    canary = tmp_path / "host-file"
    canary.write_text("x")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "mine.txt").write_text("m")
    os.link(canary, tree / "hard")
    (tree / "sym").symlink_to(canary)
    uid = uids.UID_BASE + 12345
    hostfs.chown_fresh_tree(tree, uid, uid)
    assert tree.stat().st_uid == uid and (tree / "sub" / "mine.txt").stat().st_uid == uid
    assert canary.stat().st_uid == 0 and os.lstat(tree / "sym").st_uid == 0


def test_an_exception_while_spawning_leaves_nothing_behind(
    open_sandbox: Open, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 11: at interpreter exit subprocess raises SubprocessError ("preexec_fn not supported
    at interpreter shutdown"): the session directory and the jail (uid, cgroup) are freed."""
    import subprocess

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise subprocess.SubprocessError("preexec_fn not supported at interpreter shutdown")

    monkeypatch.setattr(spawn, "_start", refuse)
    before = set(jailer._live)
    with pytest.raises(SandboxError, match="interpreter shutdown"):
        Sandbox(root=root, prestart=False, **SANDBOX_PYTHON)
    assert list(root.iterdir()) == []
    assert all(jail._closed for jail in set(jailer._live) - before)


def test_uid_locks_never_follow_a_planted_symlink(tmp_path: Path) -> None:
    """Item 11: a lock directory that is a symlink (planted in /tmp by another user) is refused,
    and nothing is created where it points."""
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    planted = tmp_path / "codeloop-root-uids"
    planted.symlink_to(target)
    with pytest.raises(SandboxError, match="no private directory"):
        uids.UidLease.acquire(lock_dirs=[planted])
    assert list(target.iterdir()) == []
    good = tmp_path / "good"
    lease = uids.UidLease.acquire(lock_dirs=[planted, good])
    try:
        assert (good / f"{lease.uid}.lock").is_file() and list(target.iterdir()) == []
    finally:
        lease.release(sweep=False)
    assert list(good.iterdir()) == []


def test_a_lease_is_held_until_its_last_holder_releases_it(tmp_path: Path) -> None:
    lease = uids.UidLease.acquire(lock_dirs=[tmp_path / "locks"])
    lease.retain()
    lease.release(sweep=False)
    assert lease.held and (tmp_path / "locks" / f"{lease.uid}.lock").exists()
    lease.release(sweep=False)
    assert not lease.held and not (tmp_path / "locks" / f"{lease.uid}.lock").exists()


def test_session_uids_avoid_the_ranges_systemd_assigns() -> None:
    """Item 11: systemd-nspawn --private-users=pick draws from 524288-1879048191; the foreign
    range is 2147352576-2147418111; uids from 2**31 up trip signedness bugs."""
    low, high = uids.UID_BASE, uids.UID_BASE + uids.UID_COUNT - 1
    for start, end in ((61184, 65519), (524288, 1879048191), (2147352576, 2147418111)):
        assert high < start or low > end, (start, end)
    assert high < 2**31


def test_root_without_namespaces_or_a_session_uid_refuses(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Item 3: a jail that would leave the worker as uid 0 on the host's files refuses, naming
    the missing layers and the fix (a host without bubblewrap, and a root the uid cannot reach)."""
    if os.geteuid() != 0:
        pytest.skip("the refusal concerns root callers")
    from codeloop.errors import SandboxUnavailable
    from codeloop.sandbox import layers

    real = layers.probe_host()
    lacking = real.without("namespaces", "no bwrap binary (simulated)").without("cgroups", "none (simulated)")
    monkeypatch.setattr(jailer, "probe_host", lambda: lacking)
    private = root / "private"
    private.mkdir(mode=0o700)  # no uid but root's can pass: the session uid is off
    with pytest.raises(SandboxUnavailable, match="run as root") as refused:
        Sandbox(root=private, prestart=False)
    assert "simulated" in str(refused.value) and "jail=False" in str(refused.value)
    assert list(private.iterdir()) == []
    with pytest.raises(SandboxUnavailable, match=r"required isolation layer\(s\) namespaces"):
        Sandbox(root=private, prestart=False, require=["namespaces"])  # a required layer is named first


def test_worker_status_is_not_root_when_namespaces_are_off(open_sandbox: Open, layers: tuple[dict[str, bool], list[str]]) -> None:
    active, _ = layers
    if active.get("namespaces"):
        pytest.skip("bubblewrap works here: the degraded rerun checks this")
    if os.geteuid() != 0:
        pytest.skip("only a root caller could leave the worker as root")
    sb = open_sandbox()
    assert sb.run("1").ok  # the worker drops to its uid before it is ready for cells
    assert int(status(worker_pid(sb))["Uid"].split()[0]) != 0


def test_remove_tree_as_an_ordinary_user_fixes_permissions_inside_only() -> None:
    """Item 1 for non-root callers: no DAC override, so unreadable and read-only directories must
    be opened up (by descriptor, inside the tree) to be removed; the parent keeps its mode."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the removal as another, ordinary uid")
    nobody = 65534
    parent = Path(tempfile.mkdtemp(prefix="codeloop-test-user-"))
    try:
        parent.chmod(0o755)
        os.chown(parent, nobody, nobody)
        tree = parent / "tree"
        (tree / "a" / "b").mkdir(parents=True)
        (tree / "a" / "b" / "f").write_text("x")
        (tree / "link").symlink_to("/etc/passwd")
        for path in (tree, tree / "a", tree / "a" / "b", tree / "a" / "b" / "f"):
            os.chown(path, nobody, nobody)
        os.lchown(tree / "link", nobody, nobody)
        (tree / "a" / "b").chmod(0o000)
        (tree / "a").chmod(0o500)
        from codeloop.sandbox import hostfs

        pid = os.fork()
        if pid == 0:  # a child that is an ordinary user: no capabilities, no DAC override
            code = 1
            try:
                os.setgroups([])
                os.setresgid(nobody, nobody, nobody)
                os.setresuid(nobody, nobody, nobody)
                hostfs.remove_tree(tree)
                code = 0
            finally:
                os._exit(code)
        _, wait_status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(wait_status) == 0
        assert not tree.exists() and stat.S_IMODE(parent.stat().st_mode) == 0o755
        assert Path("/etc/passwd").stat().st_uid == 0
    finally:
        _remove_deep(parent)
