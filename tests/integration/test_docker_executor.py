"""The Docker executor against a real engine: services, safety, images, cleanup on every path.

Every test ends by asserting that nothing labelled with its process is left (`docker ps -a`,
`docker network ls`). They share one xdist group: the sweep of one test must not race the
`kill -9` leftovers another test is looking at.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bisector.executors import Probe
from bisector.executors.docker import DockerExecutor, SuiteRunner
from bisector.gitrepo import Repository
from bisector.suites import load_suite

from ..conftest import commit, query, run_cli, run_pytest
from .conftest import labelled, nothing_left, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group(name="docker")]

PYTEST_CMD = ("python3 -m pytest -p no:cacheprovider -o junit_family=xunit1 "
              "--junitxml=/results/junit.xml {tests}")

KV_CLIENT = '''\
import os
import socket


def get(key, verb="{verb}"):
    with socket.create_connection((os.environ["KV_HOST"], 7000), timeout=5) as conn:
        conn.sendall(f"{{verb}} {{key}}\\n".encode())
        return conn.makefile().readline().strip()
'''
KV_TEST = "import kvclient\n\n\ndef test_answer():\n    assert kvclient.get('answer') == '42'\n"


def write_suite(repo: Path, name: str, text: str) -> None:
    path = repo / ".bisector" / "suites"
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{name}.toml").write_text(text)
    exclude = repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    if ".bisector/" not in exclude.read_text() if exclude.exists() else True:
        with exclude.open("a") as fh:
            fh.write("\n.bisector/\n")


def plain_suite(image: str, **extra: str) -> str:
    lines = [f'image = "{image}"', f'command = "{PYTEST_CMD}"',
             'junit = "/results/junit.xml"', 'env = { PYTHONDONTWRITEBYTECODE = "1" }']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def kv_repo(repo: Path, culprit: int, commits: int = 8) -> list[str]:
    shas = []
    for i in range(commits):
        verb = "get" if i >= culprit else "GET"
        shas.append(commit(repo, {"kvclient.py": KV_CLIENT.format(verb=verb),
                                  "tests/test_kv.py": KV_TEST, "notes.txt": f"{i}\n"},
                           f"c{i}" if i != culprit else "Speak the protocol in lower case"))
    return shas


def test_find_break_in_containers_with_a_service(repo: Path, docker_client: Any,
                                                  base_image: str, kv_image: str) -> None:
    before = labelled(docker_client)
    shas = kv_repo(repo, culprit=5)
    ready = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 7000), 1)\""
    write_suite(repo, "kv", f"""\
image = "{base_image}"
command = "{PYTEST_CMD}"
junit = "/results/junit.xml"
timeout = 60

[env]
KV_HOST = "kv"
PYTHONDONTWRITEBYTECODE = "1"

[services.kv]
image = "{kv_image}"
ready = '''{ready}'''
ready-timeout = 30
""")
    proc = run_cli("find-break", "tests/test_kv.py::test_answer", "--good", shas[0],
                   "--executor", "docker", "--suite", "kv", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[5]
    assert group["tests"][0]["verdict"] == "culprit"
    # every probe is an ordinary run, recorded with the container's environment
    rows = query(repo / ".bisector" / "history.db",
                 "SELECT DISTINCT python FROM runs WHERE trigger = 'probe'")
    assert rows == [("container:kv",)]
    # the CLI's process is gone: nothing it made (probes, services, networks) may be left
    def added() -> dict[str, list[str]]:
        after = labelled(docker_client)
        return {k: sorted(set(v) - set(before[k])) for k, v in after.items()}

    nothing = {"containers": [], "networks": [], "volumes": []}
    with contextlib.suppress(AssertionError):  # the engine's listing may lag a removal
        wait_for(lambda: added() == nothing, timeout=5)
    left = added()
    described = [(c.name, c.status, c.labels) for c in docker_client.containers.list(all=True)
                 if c.id[:12] in left["containers"]]
    assert left == nothing, described


def test_the_container_is_a_sandbox(repo: Path, docker_client: Any, base_image: str) -> None:
    commit(repo, {"tests/test_sandbox.py": '''\
import os
import pathlib


def test_sandbox():
    try:
        open("/src/written", "w").close()
        wrote = True
    except OSError:
        wrote = False
    assert not wrote, "the repository must be mounted read-only"
    assert not os.path.exists("/var/run/docker.sock")
    assert sorted(os.listdir("/sys/class/net")) == ["lo"], "no network without services"
    status = pathlib.Path("/proc/self/status").read_text()
    assert "NoNewPrivs:\\t1" in status
    caps = next(l for l in status.splitlines() if l.startswith("CapEff:")).split()[1]
    assert not int(caps, 16) & (1 << 21), "CAP_SYS_ADMIN: a privileged container"
    limits = [p for p in ("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max")
              if os.path.exists(p)]
    assert limits and pathlib.Path(limits[0]).read_text().strip() == "64"
'''})
    write_suite(repo, "sandbox", plain_suite(base_image, pids="64", memory='"256m"'))
    proc = run_pytest(repo, "--container", "sandbox", "--track-history", "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_sandbox PASSED" in proc.stdout
    assert "1 passed" in proc.stdout
    assert "bisector: recorded 1 results" in proc.stdout
    rows = query(repo / ".bisector" / "history.db",
                 "SELECT t.nodeid, res.outcome, r.python FROM results res "
                 "JOIN tests t ON t.id = res.test_id JOIN runs r ON r.id = res.run_id")
    assert rows == [("tests/test_sandbox.py::test_sandbox", "passed", "container:sandbox")]
    nothing_left(docker_client, os.getpid())


def test_container_session_reports_like_a_local_one(repo: Path, docker_client: Any,
                                                    base_image: str) -> None:
    commit(repo, {"tests/test_a.py": "def test_ok():\n    pass\n\n"
                                     "def test_bad():\n    assert 1 == 2\n",
                  "pyproject.toml": "[tool.pytest.ini_options]\n"})  # rootdir: the repo
    write_suite(repo, "py", plain_suite(base_image))
    proc = run_pytest(repo / "tests", "--container", "py", "--track-history",
                      str(repo / "tests" / "test_a.py"), "-k", "ok or bad", "-n", "2")
    assert proc.returncode == 1  # the container's pytest status: a test failed
    assert "1 failed, 1 passed" in proc.stdout
    assert "assert 1 == 2" in proc.stdout
    rows = query(repo / ".bisector" / "history.db",
                 "SELECT t.nodeid, res.outcome FROM results res JOIN tests t "
                 "ON t.id = res.test_id ORDER BY t.nodeid")
    assert rows == [("tests/test_a.py::test_bad", "failed"), ("tests/test_a.py::test_ok",
                                                               "passed")]
    nothing_left(docker_client, os.getpid())


def test_missing_service_image_is_one_line(repo: Path, docker_client: Any,
                                           base_image: str) -> None:
    good = commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n"})
    commit(repo, {"notes.txt": "1\n"})
    write_suite(repo, "s", plain_suite(base_image)
                + '\n[services.db]\nimage = "bisector-test/no-such-db:0"\n')
    for proc in (run_cli("find-break", "tests/test_t.py::test_t", "--good", good, "--suite",
                         "s", cwd=repo),
                 run_pytest(repo, "--container", "s")):
        assert proc.returncode == 2
        out = proc.stdout + proc.stderr
        assert "Traceback" not in out
        assert "image bisector-test/no-such-db:0 is not on this Docker engine" in out
    nothing_left(docker_client, os.getpid())


def _executor(repo: Path, suite_text: str, **kwargs: Any) -> DockerExecutor:
    write_suite(repo, "s", suite_text)
    return DockerExecutor(Repository(repo), load_suite("s", repo), **kwargs)


def test_timeout_kills_the_container_and_is_untestable(repo: Path, docker_client: Any,
                                                       base_image: str) -> None:
    sha = commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n"})
    suite = plain_suite(base_image).replace(PYTEST_CMD, "sleep 60")
    with _executor(repo, suite, timeout=2) as executor:
        outcome = executor.run(Probe(sha, ("tests/test_t.py::test_t",)))
        assert labelled(docker_client, os.getpid())["containers"] == []
    result = outcome.results["tests/test_t.py::test_t"]
    assert result.outcome == "untestable"
    assert outcome.problem == "timed out after 2s"
    assert outcome.finished_at - outcome.started_at < 30
    nothing_left(docker_client, os.getpid())


def test_setup_and_service_failures_are_untestable(repo: Path, docker_client: Any,
                                                   base_image: str, kv_image: str) -> None:
    sha = commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n"})
    failing_setup = plain_suite(base_image, setup='["true", "exit 3"]')
    with _executor(repo, failing_setup) as executor:
        outcome = executor.run(Probe(sha, ("tests/test_t.py::test_t",)))
    assert outcome.results["tests/test_t.py::test_t"].outcome == "untestable"
    assert outcome.problem is not None and outcome.problem.startswith("setup failed (exit 3)")
    never_ready = plain_suite(base_image) + (
        f'\n[services.kv]\nimage = "{kv_image}"\nready = "false"\nready-timeout = 1\n')
    with _executor(repo, never_ready) as executor:
        outcome = executor.run(Probe(sha, ("tests/test_t.py::test_t",)))
    assert outcome.problem == "service kv not ready after 1s (ready: false)"
    nothing_left(docker_client, os.getpid())


def test_missing_image_is_one_line(repo: Path, docker_client: Any) -> None:
    sha = commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n"})
    commit(repo, {"notes.txt": "1\n"})
    write_suite(repo, "s", plain_suite("bisector-test/absent:0"))
    proc = run_cli("find-break", "tests/test_t.py::test_t", "--good", sha,
                   "--suite", "s", cwd=repo)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "image bisector-test/absent:0 is not on this Docker engine" in proc.stderr


def test_dockerfile_images_are_cached_by_build_context(repo: Path, docker_client: Any,
                                                       base_image: str) -> None:
    dockerfile = f"FROM {base_image}\nRUN echo one > /flavour\n"
    test = "def test_flavour():\n    assert open('/flavour').read().strip() == 'one'\n"
    first = commit(repo, {"docker/Dockerfile": dockerfile, "tests/test_f.py": test})
    second = commit(repo, {"src.txt": "unrelated change\n"})
    third = commit(repo, {"docker/Dockerfile": dockerfile.replace("one", "two")})
    write_suite(repo, "built", plain_suite("x").replace('image = "x"', "").replace(
        "command", 'dockerfile = "docker/Dockerfile"\ncontext = "docker"\ncommand', 1))
    node = "tests/test_f.py::test_flavour"
    with _executor(repo, (repo / ".bisector/suites/built.toml").read_text()) as executor:
        one = executor.run(Probe(first, (node,)))
        two = executor.run(Probe(second, (node,)))
        three = executor.run(Probe(third, (node,)))
    assert one.results[node].outcome == "passed"
    assert two.results[node].outcome == "passed"
    assert three.results[node].outcome == "failed"  # the Dockerfile changed: a new image
    assert one.environment.fingerprint == two.environment.fingerprint  # reused image
    tags = [t for image in docker_client.images.list(name="bisector-build/s")
            for t in image.tags]
    assert len(tags) == 2, tags  # one build per distinct context, not per commit
    assert three.environment.fingerprint != one.environment.fingerprint  # its digest differs
    assert one.environment.key == three.environment.key  # still comparable across commits
    nothing_left(docker_client, os.getpid())


def _slow_find_break(repo: Path, base_image: str) -> tuple[subprocess.Popen[str], int]:
    sha = commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n"})
    commit(repo, {"notes.txt": "1\n"})
    write_suite(repo, "slow", plain_suite(base_image).replace(PYTEST_CMD, "sleep 120"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bisector", "find-break", "tests/test_t.py::test_t", "--good",
         sha, "--suite", "slow"], cwd=repo, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, proc.pid


def _running(client: Any, pid: int) -> list[str]:
    return [c.name for c in client.containers.list(filters={"label": f"io.bisector.pid={pid}"})]


def test_ctrl_c_leaves_nothing(repo: Path, docker_client: Any, base_image: str) -> None:
    proc, pid = _slow_find_break(repo, base_image)
    try:
        wait_for(lambda: _running(docker_client, pid))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    nothing_left(docker_client, pid)
    assert not list((repo / ".bisector" / "worktrees").glob("*"))


def test_sigterm_leaves_nothing(repo: Path, docker_client: Any, base_image: str) -> None:
    proc, pid = _slow_find_break(repo, base_image)
    try:
        wait_for(lambda: _running(docker_client, pid))
        proc.terminate()  # a cancelled CI job
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    nothing_left(docker_client, pid)


@pytest.mark.parametrize("cleaner", ["gc", "next start"])
def test_kill_9_leftovers_are_swept(repo: Path, docker_client: Any, base_image: str,
                                    cleaner: str) -> None:
    proc, pid = _slow_find_break(repo, base_image)
    wait_for(lambda: _running(docker_client, pid))
    proc.kill()
    proc.communicate(timeout=30)
    assert labelled(docker_client, pid)["containers"], "kill -9 leaves the container"
    assert list((repo / ".bisector" / "worktrees").glob(f"*-{pid}-*")), "and its worktree"
    if cleaner == "gc":
        out = run_cli("gc", cwd=repo)
        assert out.returncode == 0, out.stderr
        assert "removed 1 worktree(s)" in out.stdout
        # gc removed it, unless another sweep on this engine got there first: either way,
        # after gc nothing of the killed process is left (checked below)
        if not re.search(r"removed [1-9]\d* container\(s\)", out.stdout):
            assert not labelled(docker_client, pid)["containers"], out.stdout
    else:  # the next bisection's executor sweeps when it starts
        write_suite(repo, "quick", plain_suite(base_image))
        with DockerExecutor(Repository(repo), load_suite("quick", repo), client=docker_client):
            pass
        assert not list((repo / ".bisector" / "worktrees").glob(f"*-{pid}-*"))
    nothing_left(docker_client, pid)
    assert not list((repo / ".bisector" / "worktrees").glob(f"*-{pid}-*"))


def test_runner_streams_output_live(docker_client: Any, base_image: str,
                                    tmp_path: Path) -> None:
    from bisector.suites import parse_suite

    suite = parse_suite("echo", {"image": base_image, "command": "echo one; sleep 1; echo two",
                                 "junit": "/results/none.xml"}, "test")
    seen: list[tuple[float, str]] = []
    runner = SuiteRunner(docker_client, suite, f"{os.getpid()}-live",
                         output=lambda text: seen.append((time.monotonic(), text)))
    result = runner.run(tmp_path, [])
    returned = time.monotonic()
    assert "".join(text for _, text in seen).split() == ["one", "two"]
    first = next(t for t, text in seen if "one" in text)
    assert returned - first > 0.5, "'one' must arrive while the container still runs"
    assert result.status == 0 and result.junit is None
    nothing_left(docker_client, os.getpid())


def test_history_runs_are_evidence_for_docker_probes(repo: Path, docker_client: Any,
                                                     base_image: str) -> None:
    """A `pytest --container` run and find-break's docker probes are the same experiment."""
    good = commit(repo, {"m.py": "X = 1\n", "tests/test_m.py":
                         "import m\n\ndef test_x():\n    assert m.X == 1\n"})
    write_suite(repo, "py", plain_suite(base_image))
    assert run_pytest(repo, "--container", "py", "--track-history").returncode == 0
    for i in range(3):
        commit(repo, {"notes.txt": f"{i}\n"})
    bad = commit(repo, {"m.py": "X = 2\n"})
    assert run_pytest(repo, "--container", "py", "--track-history").returncode == 1
    proc = run_cli("find-break", "--suite", "py", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["good"] == good and data["bad"] == bad
    assert data["culprits"][0]["commit"]["sha"] == bad
    assert data["probes_reused"] >= 2


def test_ctrl_c_during_pytest_container_leaves_nothing(repo: Path, docker_client: Any,
                                                       base_image: str) -> None:
    commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n"})
    write_suite(repo, "slow", plain_suite(base_image).replace(PYTEST_CMD, "sleep 120"))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--container", "slow"], cwd=repo,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _running(docker_client, proc.pid))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, out + err
    assert "Traceback" not in out + err
    assert "bisector: interrupted; the container was removed" in out
    nothing_left(docker_client, proc.pid)


def test_nightly_in_containers(repo: Path, docker_client: Any, base_image: str,
                               tmp_path: Path) -> None:
    """`bisector nightly --container`: the night's run and its probes run in the suite's
    containers, are one experiment (the first night is the second's baseline), and leave
    nothing behind."""
    commit(repo, {"m.py": "X = 1\n", "tests/test_m.py":
                  "import m\n\ndef test_x():\n    assert m.X == 1\n", "CODEOWNERS": "m.py @m\n"})
    write_suite(repo, "nightly-py", plain_suite(base_image))
    first = run_cli("nightly", "--container", "nightly-py", "--report-dir", str(tmp_path / "n1"),
                    cwd=repo)
    assert first.returncode == 0, first.stderr
    assert json.loads((tmp_path / "n1" / "nightly.json").read_text())["status"] == "no-baseline"
    commit(repo, {"notes.txt": "1\n"})
    bad = commit(repo, {"m.py": "X = 2\n"}, "Two is the new one")
    commit(repo, {"notes.txt": "2\n"})
    second = run_cli("nightly", "--container", "nightly-py", "--report-dir", str(tmp_path / "n2"),
                     cwd=repo)
    assert second.returncode == 1, second.stderr
    data = json.loads((tmp_path / "n2" / "nightly.json").read_text())
    assert data["run"]["container"] == "nightly-py"
    [group] = data["regressions"]
    assert group["culprit"]["sha"] == bad and group["owners"][0] == "@m"
    assert group["bisection"]["probes_reused"] >= 1  # the first night's run, from its container
    assert all(p["outcomes"] for p in group["probes"])
    for kind in ("ps", "network ls", "volume ls"):  # the nightly was another process
        listed = subprocess.run(["docker", *kind.split(), *(["-a"] if kind == "ps" else []),
                                 "--filter", "label=io.bisector.suite=nightly-py", "-q"],
                                capture_output=True, text=True, check=True)
        assert listed.stdout.strip() == "", (kind, listed.stdout)


def test_an_untestable_container_probe_carries_the_tail_of_its_output(
        repo: Path, docker_client: Any, base_image: str) -> None:
    sha = commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n"})
    failing = plain_suite(base_image, setup='["echo error: no wheel for numpy; exit 3"]')
    with _executor(repo, failing) as executor:
        outcome = executor.run(Probe(sha, ("tests/test_t.py::test_t",)))
    result = outcome.results["tests/test_t.py::test_t"]
    assert result.outcome == "untestable" and outcome.problem is not None
    assert result.traceback is not None and "error: no wheel for numpy" in result.traceback
    nothing_left(docker_client, os.getpid())


def test_a_missing_submodule_is_untestable_without_a_container(
        tmp_path: Path, docker_client: Any, base_image: str) -> None:
    from ..test_executor_base import _clone_without_submodule

    clone, sha = _clone_without_submodule(tmp_path)
    write_suite(clone, "s", plain_suite(base_image))
    with DockerExecutor(Repository(clone), load_suite("s", clone)) as executor:
        outcome = executor.run(Probe(sha, ("test_lib.py::test_value",)))
    assert outcome.problem is not None and "submodule lib" in outcome.problem
    assert outcome.results["test_lib.py::test_value"].outcome == "untestable"
    assert outcome.log == ""  # no container ran
    nothing_left(docker_client, os.getpid())
