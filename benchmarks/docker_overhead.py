"""Per-probe overhead of the Docker executor over the local one, and a cached image vs a build.

The same test at the same commits, probed by both executors in turn (interleaved, so a busy
machine slows both alike); the figure is the difference of the medians. Then a suite built
from a Dockerfile: the first probe builds the image, later probes of commits whose build
context did not change reuse it.

    python benchmarks/docker_overhead.py [--probes 12]

Needs a Docker engine and the base image (make base-image).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _generated import build_linear

from bisector.executors import Probe
from bisector.executors.docker import DockerExecutor, connect
from bisector.executors.local import LocalExecutor
from bisector.gitrepo import Repository
from bisector.suites import parse_suite

BASE = "bisector/base:bookworm"
TEST = "tests/test_m.py::test_value"
COMMAND = ("python3 -m pytest -p no:cacheprovider -o junit_family=xunit1 "
           "--junitxml=/results/junit.xml {tests}")


def build(repo: Path, commits: int) -> list[str]:
    """`commits` commits that change only a comment: the same test passes at every one."""
    return build_linear(repo, commits, lambda i: {
        "m.py": f"def value():\n    return 1  # {i}\n",
        "tests/test_m.py": "import m\n\ndef test_value():\n    assert m.value() == 1\n",
        "docker/Dockerfile": f"FROM {BASE}\nRUN echo built > /built\n",
    })


def timed(executor: LocalExecutor | DockerExecutor, sha: str) -> float:
    start = time.perf_counter()
    outcome = executor.run(Probe(sha, (TEST,)))
    elapsed = time.perf_counter() - start
    assert outcome.results[TEST].outcome == "passed", outcome.log[-500:]
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, default=12)
    args = ap.parse_args()
    client = connect()
    client.images.get(BASE)  # make base-image first
    with tempfile.TemporaryDirectory(prefix="bisector-docker-bench-") as tmp:
        repo_path = Path(tmp) / "repo"
        shas = build(repo_path, args.probes)
        image_suite = parse_suite("bench", {"image": BASE, "command": COMMAND,
                                            "junit": "/results/junit.xml",
                                            "env": {"PYTHONDONTWRITEBYTECODE": "1"}}, "bench")
        built_suite = parse_suite("bench-built", {
            "dockerfile": "docker/Dockerfile", "context": "docker", "command": COMMAND,
            "junit": "/results/junit.xml"}, "bench")
        with Repository(repo_path) as repo, LocalExecutor(repo) as local, \
                DockerExecutor(repo, image_suite, client=client) as docker:
            timed(local, shas[0])  # warm both: the first worktree add, the first container
            timed(docker, shas[0])
            local_s, docker_s = [], []
            for sha in shas:
                local_s.append(timed(local, sha))
                docker_s.append(timed(docker, sha))
        for image in client.images.list(name="bisector-build/bench-built"):
            client.images.remove(image.id, force=True)
        with Repository(repo_path) as repo, \
                DockerExecutor(repo, built_suite, client=client) as built:
            first = timed(built, shas[0])  # builds the image
            cached = [timed(built, sha) for sha in shas[1:]]  # same context: reused
        for image in client.images.list(name="bisector-build/bench-built"):
            client.images.remove(image.id, force=True)
    lm, dm = statistics.median(local_s), statistics.median(docker_s)
    print(f"{len(shas)} probes each, interleaved, same test and commits")
    print(f"{'executor':<26} {'median s':>9} {'min s':>7} {'max s':>7}")
    print(f"{'local (worktree)':<26} {lm:>9.3f} {min(local_s):>7.3f} {max(local_s):>7.3f}")
    print(f"{'docker (cached image)':<26} {dm:>9.3f} {min(docker_s):>7.3f} {max(docker_s):>7.3f}")
    print(f"overhead per probe: {dm - lm:+.3f} s (goal <= 1.5 s); ratio {dm / lm:.2f}")
    cm = statistics.median(cached)
    print(f"Dockerfile suite: first probe (build) {first:.3f} s, later probes (cached, "
          f"median of {len(cached)}) {cm:.3f} s: a build costs {first - cm:+.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
