"""The README stays true: its generated tables equal what the code generates now."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.schema import TABLES, markdown_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("table", sorted(TABLES))
def test_results_schema_tables_match_the_code(table):
    assert markdown_table(table) in README, f"README's `{table}` schema is stale: regenerate it"


def test_search_space_table_matches_the_code():
    from sweeps.catalog import strategy_markdown

    assert strategy_markdown("synthetic") in README, "README's search-space table is stale: regenerate it"


def test_the_two_newcomer_commands_come_first():
    quick_start = README.index("## Quick start")
    assert README.index("make run", quick_start) < README.index("## Layout")
    assert README.index("make test", quick_start) < README.index("## Layout")
