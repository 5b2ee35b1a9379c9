"""Test-only plugins: fault injection for the trainer tests."""
