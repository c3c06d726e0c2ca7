"""The `pasar` command."""
