"""The layers themselves: what the host sees of a worker, the refusals, and each module alone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hostside import SANDBOX_PYTHON, alive, session_processes, status, wait_until, worker_pid

from codeloop import Sandbox
from codeloop.errors import ConfigError, SandboxError, SandboxUnavailable
from codeloop.sandbox import layers as registry
from codeloop.sandbox.jail import bwrap, cgroups, inworker, jailer, launch, policy, seccomp_filter, uids

Open = Callable[..., Sandbox]
Need = Callable[..., None]


def test_every_layer_is_reported_and_every_missing_one_explained(
    layers: tuple[dict[str, bool], list[str]],
) -> None:
    active, notes = layers
    assert set(registry.names()) <= set(active), set(registry.names()) - set(active)
    for name, on in active.items():
        if not on:
            assert any(note.startswith(f"{name}:") for note in notes), (name, notes)


def test_worker_credentials_seen_from_the_host(open_sandbox: Open, need: Need) -> None:
    need("uid")
    sb = open_sandbox()
    sb.run("1")  # the worker drops to its uid as it starts: look once it answers
    st = status(worker_pid(sb))
    uid = int(st["Uid"].split()[0])
    assert uids.UID_BASE <= uid < uids.UID_BASE + uids.UID_COUNT
    assert set(st["Uid"].split()) == {str(uid)} and set(st["Gid"].split()) == {str(uid)}
    assert st["Groups"] == ""
    for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[caps], 16) == 0, (caps, st[caps])
    assert st["NoNewPrivs"] == "1"


def test_seccomp_is_on_from_the_hosts_view(open_sandbox: Open, need: Need) -> None:
    need("seccomp")
    sb = open_sandbox()
    sb.run("1")
    assert status(worker_pid(sb))["Seccomp"] == "2"


def test_sessions_get_distinct_uids(open_sandbox: Open, need: Need) -> None:
    need("uid")
    a, b = open_sandbox(), open_sandbox()
    a.run("1")
    b.run("1")
    assert status(worker_pid(a))["Uid"] != status(worker_pid(b))["Uid"]


def test_worker_command_lines_carry_no_secrets(open_sandbox: Open, token: str) -> None:
    sb = open_sandbox(env={"API_KEY": token})
    assert sb.run("import os\nos.environ['API_KEY']").value == repr(token)  # it did arrive, by env
    for pid in session_processes(sb):
        assert token not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")


def test_require_refuses_a_missing_layer_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    lacking = registry.probe_host().without("landlock", "this kernel has no Landlock (simulated)")
    monkeypatch.setattr(jailer, "probe_host", lambda: lacking)
    with pytest.raises(SandboxUnavailable, match=r"landlock.*simulated"):
        Sandbox(require=["landlock"], prestart=False)
    with Sandbox(prestart=False, **SANDBOX_PYTHON) as sb:  # without require it runs, and says what is off
        assert sb.isolation["landlock"] is False
        assert any("simulated" in note for note in sb.isolation_notes)


def test_strict_refuses_a_missing_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    lacking = registry.probe_host().without("namespaces", "simulated")
    monkeypatch.setattr(jailer, "probe_host", lambda: lacking)
    with pytest.raises(SandboxUnavailable, match="namespaces"):
        Sandbox(strict=True, prestart=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"require": ["teleportation"]},
        {"limits": {"processes": 0}},
        {"limits": {"gpus": 1}},
        {"limits": {"open_files": "9"}},
    ],
)
def test_bad_settings_are_clear_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Sandbox(prestart=False, **kwargs)  # type: ignore[arg-type]


def test_missing_layers_line_names_them() -> None:
    assert launch.missing_layers_line({"a": True, "b": True}) is None
    line = launch.missing_layers_line({"namespaces": False, "seccomp": True, "cgroups": False})
    assert line is not None and "cgroups, namespaces" in line


@pytest.mark.parametrize("bad", ["/", "/etc", "/tmp", "symlink", "world_writable", "other_owner"])
def test_only_private_directories_are_handed_to_a_session_uid(tmp_path: Path, bad: str) -> None:
    """Regression: a probe with session_dir=/ once handed the whole root filesystem to a session uid."""
    target = tmp_path / "d"
    target.mkdir(mode=0o700)
    if bad == "symlink":
        (tmp_path / "link").symlink_to(target)
        path = str(tmp_path / "link")
    elif bad == "world_writable":
        target.chmod(0o777)
        path = str(target)
    elif bad == "other_owner":
        if os.geteuid() != 0:
            pytest.skip("giving a directory away needs root")
        os.chown(target, 12345, 12345)
        path = str(target)
    else:
        path = bad
    before = os.lstat(path).st_uid
    with pytest.raises(SandboxError, match="not a private session directory"):
        uids.check_private_dir(path)
    assert os.lstat(path).st_uid == before


def test_policy_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        policy.JailPolicy(session_dir=tmp_path, memory_mb=-1)
    with pytest.raises(ConfigError):
        policy.JailPolicy(session_dir=Path("relative"))
    limits = policy.JailPolicy(session_dir=tmp_path, memory_mb=100, cpu_seconds=7).rlimits()
    assert limits["as"] == 100 << 20 and limits["cpu"] == 7 and limits["core"] == 0
    assert "nproc" not in limits  # the process_limit layer adds it where it counts the session alone


def test_seccomp_program_compiles_for_each_setting() -> None:
    programs = {seccomp_filter.compile_filter(net, keep) for net in (False, True) for keep in (False, True)}
    assert len(programs) == 4
    assert all(len(p) % 8 == 0 and len(p) > 100 for p in programs)


@pytest.mark.parametrize("network", [False, True])
def test_bwrap_command_line(tmp_path: Path, network: bool) -> None:
    argv = bwrap.bwrap_argv(
        "/bwrap", bwrap.BwrapMode.PRIVILEGED, read_only=["/usr"], session_dir=str(tmp_path), tmp_size_bytes=1 << 20,
        network=network, switch_uid=True, seccomp_fd=11, command=["python", "w.py"],
    )  # fmt: skip
    assert ("--unshare-net" in argv) is not network
    assert argv[argv.index("--seccomp") + 1] == "11"
    assert argv[-3:] == ["--", "python", "w.py"]
    assert "CAP_SETUID" in argv and "--cap-drop" in argv
    assert argv[argv.index("--bind") + 1 : argv.index("--bind") + 3] == [str(tmp_path), str(tmp_path)]


def test_paths_under_tmp_are_bound_over_the_private_tmp(tmp_path: Path) -> None:
    # A checkout (and its .venv) under /tmp, as CI clones may be: the private /tmp must be
    # mounted first, else it hides the interpreter and every worker dies at exec.
    venv = "/tmp/ci-checkout/.venv"
    argv = bwrap.bwrap_argv(
        "/bwrap", bwrap.BwrapMode.PRIVILEGED, read_only=["/usr", venv], session_dir=str(tmp_path), tmp_size_bytes=1 << 20,
        network=False, switch_uid=True, seccomp_fd=None, command=["python", "w.py"],
    )  # fmt: skip
    tmpfs_at = next(i for i in range(len(argv) - 1) if argv[i] == "--tmpfs" and argv[i + 1] == "/tmp")
    bind_at = next(i for i in range(len(argv) - 2) if argv[i] == "--ro-bind-try" and argv[i + 1] == venv)
    assert tmpfs_at < bind_at


def test_landlock_alone_confines_a_process(tmp_path: Path) -> None:
    if inworker.landlock_abi() < 1:
        pytest.skip("no Landlock in this kernel")
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    code = (
        "import sys\nsys.path.insert(0, sys.argv[1])\nimport inworker\n"
        "inworker.landlock_restrict(['/usr', '/lib', '/lib64', sys.prefix, sys.base_prefix, sys.argv[1]], [sys.argv[2]])\n"
        "open(sys.argv[2] + '/ok', 'w').write('x')\n"
        "try:\n    open(sys.argv[3] + '/no', 'w').write('x')\nexcept PermissionError:\n    pass"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(Path(inworker.__file__).parent), str(allowed), str(outside)],
        check=True,
    )
    assert (allowed / "ok").exists() and not (outside / "no").exists()


def test_uid_release_kills_what_runs_as_it() -> None:
    if os.geteuid() != 0:
        pytest.skip("switching uids needs root")
    lease = uids.UidLease.acquire()
    proc = subprocess.Popen(
        ["sleep", "60"], user=lease.uid, group=lease.gid, extra_groups=[], start_new_session=True
    )
    lease.release()
    assert proc.wait(timeout=5) == -9


def test_session_cgroup_limits_and_removal(need: Need) -> None:
    need("cgroups")
    root, _why = cgroups.find_root()
    assert root is not None
    group = cgroups.SessionCgroup.create(root, 64 << 20, 7)
    try:
        pids_file = next(d for k, d in group.dirs.items() if k in ("pids", "unified")) / "pids.max"
        assert pids_file.read_text().strip() == "7"
        fds, join = group.joiner()
        proc = subprocess.Popen(["sleep", "60"], preexec_fn=join)
        for fd in fds:
            os.close(fd)
        assert proc.pid in group.pids()
    finally:
        group.remove()
    assert proc.wait(timeout=5) == -9
    assert not any(d.exists() for d in group.dirs.values())


def test_closing_a_session_frees_its_uid_and_cgroup(open_sandbox: Open, need: Need) -> None:
    need("uid")
    sb = open_sandbox()
    sb.run("1")
    uid = int(status(worker_pid(sb))["Uid"].split()[0])
    jail = sb._launch.jail
    assert jail is not None
    groups = list(jail.state.cgroup.dirs.values()) if jail.state.cgroup is not None else []
    sb.close()
    assert wait_until(lambda: not any(alive(p) for p in _pids_of(uid)))
    assert not any(d.exists() for d in groups)


def _pids_of(uid: int) -> list[int]:
    from hostside import of_uid

    return of_uid(uid)


@pytest.mark.skipif(
    not Path("/usr/bin/python3").exists(), reason="needs a system python3 an ordinary uid can run"
)
def test_nproc_in_a_user_namespace_counts_the_session_alone() -> None:
    """What process_limit rests on for unprivileged callers: in its own user namespace a session's
    RLIMIT_NPROC counts its own processes, not the caller's (who here already runs 30)."""
    found = registry.probe_host().found["namespaces"]
    if os.geteuid() != 0 or found is None:
        pytest.skip("needs root (to act as an ordinary uid) and a working bubblewrap")
    lease = uids.UidLease.acquire()
    as_user = {"user": lease.uid, "group": lease.gid, "extra_groups": [], "start_new_session": True}
    sleepers = [subprocess.Popen(["sleep", "30"], **as_user) for _ in range(30)]  # type: ignore[call-overload]
    try:
        code = (
            "import os, resource, time\nresource.setrlimit(resource.RLIMIT_NPROC, (20, 20))\nn = 0\n"
            "while n < 100:\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
            "    if pid == 0:\n        time.sleep(3)\n        os._exit(0)\n    n += 1\nprint(n)"
        )
        argv = bwrap.bwrap_argv(
            found.path, bwrap.BwrapMode.USERNS, read_only=["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache"],
            session_dir="/tmp", tmp_size_bytes=1 << 20, network=False, switch_uid=False, seccomp_fd=None,
            command=["/usr/bin/python3", "-I", "-c", code],
        )  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, **as_user)  # type: ignore[call-overload]
        assert out.returncode == 0, out.stderr
        assert 10 <= int(out.stdout) < 20, out.stdout  # its own limit bit, the caller's 30 did not count
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait()
        lease.release()
