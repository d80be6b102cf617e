"""The README's result tables are the ones the code computes (``python tools/readme_tables.py`` rewrites them)."""

from tools.readme_tables import README, blocks, tables


def test_readme_tables_are_what_the_demo_computes():
    shown = blocks(README.read_text())
    for marker, table in tables().items():
        assert shown[marker] == table, f"README table {marker!r} is stale: run python tools/readme_tables.py"
