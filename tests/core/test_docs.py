"""Generated reference pages must match the code (regenerate: python -m vssl_core.cli.docs)."""

from pathlib import Path

from vssl_core.cli.docs import write_all

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"


def test_reference_pages_are_up_to_date(tmp_path):
    for fresh in write_all(tmp_path):
        committed = DOCS / fresh.name
        assert committed.is_file(), f"{committed} missing: run python -m vssl_core.cli.docs"
        assert committed.read_text() == fresh.read_text(), (
            f"{committed} is stale: run python -m vssl_core.cli.docs"
        )
