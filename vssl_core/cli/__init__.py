"""The `vssl` command line."""
