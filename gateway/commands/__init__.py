"""Subcommands of the `gateway` CLI, one module per command group, each with `register()`."""
