"""The README and docs/ stay true: their code samples import and run, their links resolve.

A sample that goes stale is worse than none: a user copies it first. Every ``python`` block must parse and
its imports must resolve; a block that defines a DAG (``with DAG(``) is executed, which checks the operator
signatures it uses (DAG definitions do no I/O). ``json`` blocks must be JSON.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
PAGES = [REPO_ROOT / "README.md", REPO_ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]
USER_PAGES = {
    "connections.md",
    "operators.md",
    "incremental.md",
    "delivery-guarantees.md",
    "sandbox.md",
    "ui.md",
    "assets-and-lineage.md",
}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Sample:
    page: Path
    line: int
    language: str
    code: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line}"


def samples(language: str) -> list[Sample]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) == language:
                line = text.count("\n", 0, match.start()) + 1
                found.append(Sample(page, line, language, match.group(2)))
    return found


PYTHON = samples("python")
DAG_SAMPLES = [s for s in PYTHON if "with DAG(" in s.code]


def test_the_docs_pages_exist_and_the_readme_links_to_them():
    assert {p.name for p in DOCS.glob("*.md")} >= USER_PAGES
    readme = (REPO_ROOT / "README.md").read_text()
    index = (DOCS / "README.md").read_text()
    for name in USER_PAGES:
        assert f"docs/{name}" in readme, f"README does not link to docs/{name}"
        assert f"({name})" in index, f"docs/README.md does not link to {name}"
    assert "CHANGELOG.md" in readme


def test_relative_links_resolve():
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith(("#", "mailto:")):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.relative_to(REPO_ROOT)} links to missing {target}"


def test_the_changelog_starts_at_the_current_version():
    from airflow_provider_userattrs import __version__

    headings = re.findall(r"^## (\d+\.\d+\.\d+)", (REPO_ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert headings and headings[0] == __version__
    assert headings[-1] == "0.1.0"


@pytest.mark.parametrize("sample", PYTHON, ids=str)
def test_python_samples_parse_and_their_imports_resolve(sample: Sample):
    tree = ast.parse(sample.code, filename=str(sample))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or _is_submodule(node.module, alias.name), (
                    f"{sample}: {node.module} has no {alias.name}"
                )


def _is_submodule(package: str, name: str) -> bool:
    try:
        importlib.import_module(f"{package}.{name}")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("sample", DAG_SAMPLES, ids=str)
def test_dag_samples_build_their_dag(sample: Sample, monkeypatch):
    """Run as a DAG file is run: Airflow's auto-registration finds the DAGs of ``with DAG(...):`` blocks."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    name = f"docs_sample_{sample.page.stem.replace('-', '_')}_{sample.line}"
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(DagContext, "current_autoregister_module_name", name)
    monkeypatch.setattr(DagContext, "autoregistered_dags", set())
    exec(compile(sample.code, str(sample), "exec"), module.__dict__)
    dags = [dag for dag, mod in DagContext.autoregistered_dags if mod is module]
    assert dags, f"{sample}: no DAG was built"
    for dag in dags:
        assert dag.task_dict, f"{sample}: DAG {dag.dag_id} has no task"


def test_dag_samples_are_found():
    # the README's quick start and the docs' examples at least: a broken fence would skip them silently
    assert len(DAG_SAMPLES) >= 6


@pytest.mark.parametrize("sample", samples("json"), ids=str)
def test_json_samples_are_json(sample: Sample):
    json.loads(sample.code)
