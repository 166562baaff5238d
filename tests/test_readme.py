"""The README and its reference pages stay true: generated tables equal what the code generates now."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrresults.schema import TABLES, markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
RESULTS = (ROOT / "docs" / "RESULTS.md").read_text()
SEARCH_SPACES = (ROOT / "docs" / "SEARCH_SPACES.md").read_text()
WORKLOADS = (ROOT / "docs" / "WORKLOADS.md").read_text()


@pytest.mark.parametrize("table", sorted(TABLES))
def test_results_schema_tables_match_the_code(table):
    assert markdown_table(table) in RESULTS, f"docs/RESULTS.md's `{table}` schema is stale: regenerate it"


def test_search_space_table_matches_the_code():
    from sweeps.spec.catalog import strategy_markdown

    assert strategy_markdown("synthetic") in SEARCH_SPACES, "docs/SEARCH_SPACES.md's table is stale: regenerate it"


def test_the_two_newcomer_commands_come_first():
    quick_start = README.index("## Quick start")
    assert README.index("make run", quick_start) < README.index("## Layout")
    assert README.index("make test", quick_start) < README.index("## Layout")


def test_the_adding_a_workload_example_runs():
    """docs/WORKLOADS.md's runnable example registers a workload and trains it (in a fresh interpreter)."""
    import subprocess
    import sys

    section = WORKLOADS[WORKLOADS.index("## Adding a workload"):]
    code = section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 9)]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert "'status': 'ok'" in done.stdout


def test_every_document_the_code_and_the_readme_cite_exists():
    """docs/STYLE.md 16: a ``docs/X.md`` named in a package's source or linked from the README is in the repository."""
    import re

    cited = set(re.findall(r"\]\((docs/[A-Za-z_]+\.md)\)", README))
    for package in ("strategies", "trainables", "search_spaces", "sweeps", "reports", "vocab", "lrstats",
                    "lrresults"):
        for source in (ROOT / package).rglob("*.py"):
            cited |= set(re.findall(r"docs/[A-Za-z_]+\.md", source.read_text()))
    assert {"docs/STRATEGIES.md", "docs/STYLE.md"} <= cited
    missing = sorted(path for path in cited if not (ROOT / path).is_file())
    assert not missing, f"cited but not in the repository: {missing}"
