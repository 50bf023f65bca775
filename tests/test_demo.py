from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_make_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bisector.demo"],
        env={**__import__("os").environ, "BISECTOR_DEMO_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1 regression at" in out
    assert "tests/test_calc.py::test_add_negative" in out
    assert (tmp_path / "calc" / ".bisector" / "history.db").exists()
    culprit = out.split("The planted culprit is ")[1][:10]
    assert f"culprit {culprit} Clamp add() results at zero" in out  # the nightly named it
    html = tmp_path / "reports" / "nightly.html"
    assert out.rstrip().splitlines()[-2] == f"HTML report: {html}"
    assert f'data-sha="{culprit}' in html.read_text()
