"""Progress of a bisection: the pure state and words, the rich bar on a console, and what
`find-break` and `nightly` print on a pseudo-terminal, a pipe, with -q and with -v."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from rich.console import Console

from bisector.cli import main
from bisector.demo import build_repo
from bisector.progress import (
    Board,
    Lines,
    Live,
    ProbeDone,
    ProbeStart,
    Silent,
    clock,
    done_line,
    eta,
    for_stderr,
    outcome_words,
    start_line,
    tail,
)

from .conftest import commit, run_cli

TEST = "tests/test_calc.py::test_add_negative"


# -- words and the pure board --------------------------------------------------------------


def test_the_probe_line_keeps_its_wording() -> None:
    start = ProbeStart(3, "a" * 40, "bisect, 7 of 19 candidates left", 2, left=7)
    assert start_line(start) == "probe 3: aaaaaaaaaa (bisect, 7 of 19 candidates left), 2 test(s)"
    files = ProbeStart(1, "b" * 40, "check bad end, list the tests of t.py", None)
    assert start_line(files) == "probe 1: bbbbbbbbbb (check bad end, list the tests of t.py)"


def test_outcome_words() -> None:
    assert outcome_words(["failed"]) == "failed"
    assert outcome_words(["passed", "failed", "passed"]) == "2 passed, 1 failed"
    assert outcome_words([]) == "no result"
    long = "ImportError: " + "x" * 300 + "\nsecond line"
    words = outcome_words(["untestable"], long)
    assert words.startswith("untestable (ImportError: x") and words.endswith("...)")
    assert "\n" not in words and len(words) < 140


def test_done_line_and_clock() -> None:
    assert done_line(ProbeDone(4, "c" * 40, 2.34, "failed"), "bisect") == \
        "probe 4: cccccccccc (bisect) failed in 2.3s"
    assert clock(7) == "0:07" and clock(750) == "12:30" and clock(3723) == "1:02:03"
    assert done_line(ProbeDone(1, "d" * 40, 125, "passed")).endswith("passed in 2:05")


def test_tail_is_bounded_in_lines_and_characters() -> None:
    output = "\n".join(f"line {i}" for i in range(100)) + "\n\n"
    assert tail(output, lines=3) == ["line 97", "line 98", "line 99"]
    assert tail("a" * 50 + "\n" + "b" * 50, chars=60) == ["b" * 50]
    assert tail("z" * 5000, chars=100) == ["z" * 100]
    assert tail("") == [] and tail("\n\n") == []


def test_eta_from_measured_probe_times() -> None:
    assert eta([], 3) is None  # nothing measured yet
    assert eta([10.0, 20.0], 0) is None  # nothing left
    assert eta([10.0, 20.0], 3) == 45.0
    assert eta([10.0], 4, width=2) == 20.0  # two at a time: two rounds
    assert eta([10.0], 1, running_for=4.0) == 6.0
    assert eta([10.0], 1, running_for=40.0) == 0.0


def test_board_follows_stages_and_probes() -> None:
    board = Board()
    assert board.description() == "probing" and board.count() == "0 probes"
    board.plan("bisect", 19, 5)
    assert board.description() == "bisect: 19 candidates"
    board.started(ProbeStart(3, "a" * 40, "bisect", 1, left=19), now=100.0)
    assert board.description() == "bisect: 19 of 19 candidates left"
    assert board.timing(112.0) == "probe 0:12"  # nothing measured: no ETA yet
    start = board.finished(ProbeDone(3, "a" * 40, 12.0, "failed"))
    assert start is not None and start.number == 3
    assert board.count() == "1/5 probes"
    board.started(ProbeStart(4, "b" * 40, "bisect", 1, left=10), now=200.0)
    assert board.description() == "bisect: 10 of 19 candidates left"
    assert board.timing(203.0) == "probe 0:03 · ETA 0:45"  # 4 left at 12 s, 3 s spent
    board.plan("confirm culprits", 0, 2)
    assert board.description() == "confirm culprits" and board.count() == "0/2 probes"
    assert board.seconds == [12.0]  # measured times outlive a stage


def test_board_total_grows_past_a_bound_the_search_exceeds() -> None:
    board = Board()
    board.plan("bisect", 4, 1)
    board.started(ProbeStart(1, "a" * 40, "x", 1), 0.0)
    board.finished(ProbeDone(1, "a" * 40, 1.0, "passed"))
    board.started(ProbeStart(2, "b" * 40, "x", 1), 1.0)
    assert board.total() == 2 and board.count() == "1/2 probes"


# -- the three reporters -------------------------------------------------------------------


def test_lines_print_one_line_per_probe_and_the_tail_when_verbose() -> None:
    out: list[str] = []
    quiet = Lines(out.append)
    start = ProbeStart(1, "a" * 40, "check bad end", 1)
    done = ProbeDone(1, "a" * 40, 1.5, "failed", "collected 1 item\nE   assert 0 == -5\n")
    quiet.plan("check ends", 19, 2)
    quiet.probe_started(start)
    quiet.probe_done(done)
    quiet.note("resuming: 2 probes")
    quiet.finish()
    assert out == ["probe 1: aaaaaaaaaa (check bad end), 1 test(s)", "resuming: 2 probes"]
    out.clear()
    loud = Lines(out.append, verbose=True)
    loud.probe_started(start)
    loud.probe_done(done)
    assert out == ["probe 1: aaaaaaaaaa (check bad end), 1 test(s)",
                   "probe 1: aaaaaaaaaa failed in 1.5s",
                   "  | collected 1 item", "  | E   assert 0 == -5"]


def _live(verbose: bool = False) -> tuple[Live, io.StringIO]:
    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=120, color_system=None,
                      highlight=False, markup=False, emoji=False)
    ticks = iter(range(0, 10_000, 5))
    return Live(console, verbose=verbose, now=lambda: float(next(ticks))), file


def test_live_draws_the_bar_and_stops_clean() -> None:
    live, file = _live(verbose=True)
    live.plan("bisect", 19, 5)
    live.probe_started(ProbeStart(3, "a" * 40, "bisect, 19 of 19 candidates left", 1,
                                  left=19))
    live.probe_done(ProbeDone(3, "a" * 40, 2.0, "failed", "E   assert [red]0[/red] == -5"))
    live.probe_started(ProbeStart(4, "b" * 40, "bisect, 10 of 19 candidates left", 1,
                                  left=10))
    live.finish()
    live.finish()  # twice: the CLI's finally after find_break's own
    text = file.getvalue()
    assert "bisect: 19 of 19 candidates left" in text and "0/5 probes" in text
    assert "bisect: 10 of 19 candidates left" in text and "1/5 probes" in text
    assert "probe 3: aaaaaaaaaa (bisect, 19 of 19 candidates left) failed in 2.0s" in text
    assert "  | E   assert [red]0[/red] == -5" in text  # output is text, never markup
    assert text.rindex("\x1b[?25h") > text.rindex("\x1b[?25l")  # the cursor is back
    assert text.endswith("\x1b[2K")  # and the bar's line erased: the result comes next


def test_live_prints_notes_as_text() -> None:
    live, file = _live()
    live.note("dask: [bold]w1[/bold]@host :smile:")
    live.finish()
    assert "dask: [bold]w1[/bold]@host :smile:" in file.getvalue()


def test_silent_and_the_choice_of_reporter(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(for_stderr(quiet=True), Silent)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")  # CI logs that want colour do not get a bar
    assert isinstance(for_stderr(verbose=True), Lines)


# -- the commands ----------------------------------------------------------------------------


@pytest.fixture
def calc(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "calc"
    return path, build_repo(path, commits=8, culprit=5)


def _plain(text: str) -> str:
    """What a person reads: the terminal's control sequences (colour, cursor) taken out."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def _on_pty(args: list[str], cwd: Path, *, interrupt_after: str | None = None
            ) -> tuple[int, str]:
    """Run `python -m bisector ARGS` with stdin, stdout and stderr on a pseudo-terminal; its
    exit status and everything it wrote. With `interrupt_after`, SIGINT once that is shown."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = {k: v for k, v in os.environ.items()
           if k not in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
                        "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "bisector", *args], cwd=cwd, stdin=slave,
                            stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 180
    sent = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            text = b"".join(chunks).decode(errors="replace")
            if interrupt_after and not sent and interrupt_after in text:
                proc.send_signal(signal.SIGINT)
                sent = True
            if not ready and proc.poll() is not None:
                break
        return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_a_terminal_shows_a_progress_bar_then_the_result(calc) -> None:
    repo, shas = calc
    code, raw = _on_pty(["find-break", TEST, "--good", shas[0]], repo)
    assert code == 0, raw
    assert "\x1b[?25l" in raw and "\x1b[?25h" in raw  # a live display, its cursor restored
    text = _plain(raw)
    assert "check ends: 7 candidates" in text and "0/2 probes" in text
    assert "bisect: 7 of 7 candidates left" in text and "/3 probes" in text  # log2(7) bound
    assert "━" in text and "ETA " in text
    assert f"probe 1: {shas[7][:10]} (check bad end) failed in " in text
    assert f"culprit {shas[5][:10]}" in text  # the result, after the bar is gone
    assert raw.rindex("\x1b[?25h") < raw.rindex(shas[5][:10])  # the last: the result


def test_ctrl_c_under_the_bar_leaves_the_terminal_clean(repo: Path) -> None:
    slow = "import time\n\ndef test_slow():\n    time.sleep(30)\n"
    shas = [commit(repo, {"test_s.py": slow}, "start")]
    for i in range(3):
        shas.append(commit(repo, {"n": str(i)}, f"c{i}"))
    code, text = _on_pty(["find-break", "test_s.py::test_slow", "--good", shas[0]], repo,
                         interrupt_after="probe 0:02")
    assert code == 130, text
    assert "bisector: interrupted" in text and "Traceback" not in text
    shown, hidden = text.rindex("\x1b[?25h"), text.rindex("\x1b[?25l")
    assert shown > hidden  # the cursor is back
    assert text.index("bisector: interrupted") > shown  # the bar is gone before the message
    wt = repo / ".bisector" / "worktrees"
    assert not wt.is_dir() or not any(wt.iterdir())


def test_a_pipe_gets_plain_lines_and_verbose_the_output_tail(calc) -> None:
    repo, shas = calc
    proc = run_cli("find-break", TEST, "--good", shas[0], "-v", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert "\x1b" not in proc.stderr
    assert f"probe 1: {shas[7][:10]} (check bad end), 1 test(s)" in err
    assert f"probe 2: {shas[0][:10]} (check good end), 1 test(s)" in err
    assert "probe 3: " in proc.stderr and "(bisect, 7 of 7 candidates left), 1 test(s)" in \
        proc.stderr
    assert any(line.startswith(f"probe 1: {shas[7][:10]} failed in ") for line in err)
    assert "  | E       assert 0 == -5" in err  # the probe's pytest output
    assert f"culprit {shas[5][:10]}" in proc.stdout


def test_quiet_prints_the_result_and_no_progress(calc) -> None:
    repo, shas = calc
    proc = run_cli("find-break", TEST, "--good", shas[0], "-q", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"culprit {shas[5][:10]}" in proc.stdout


@pytest.mark.parametrize("command", ["find-break", "nightly"])
def test_quiet_and_verbose_cannot_be_combined(repo: Path, command: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "-C", str(repo), "-q", "-v"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "-q/--quiet and -v/--verbose cannot be combined" in err


CALC_GOOD = "def add(a, b):\n    return a + b\n"
CALC_BAD = "def add(a, b):\n    return max(a + b, 0)\n"
TESTS = ("from calc import add\n\n\ndef test_add_negative():\n"
         "    assert add(-2, -3) == -5\n")


def test_nightly_quiet_then_verbose(repo: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    commit(repo, {"calc.py": CALC_GOOD, "tests/test_calc.py": TESTS,
                  ".gitignore": "__pycache__/\n"}, "Calculator")
    commit(repo, {"NOTES.md": "1\n"}, "Notes 1")
    args = ["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "r")]
    assert main([*args, "-q"]) == 0
    quiet = capsys.readouterr()
    assert "running the suite at" not in quiet.err and "no baseline" in quiet.out.lower()
    culprit = commit(repo, {"calc.py": CALC_BAD}, "Clamp add() at zero")
    commit(repo, {"NOTES.md": "2\n"}, "Notes 2")
    assert main([*args, "-v"]) == 1
    loud = capsys.readouterr()
    assert "running the suite at" in loud.err
    assert f"{culprit[:10]} (confirm culprit), 1 test(s)" in loud.err
    assert "  | E       assert 0 == -5" in loud.err  # a probe's output tail
    assert f"culprit {culprit[:10]}" in loud.out
