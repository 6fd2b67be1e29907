"""townhall.server."""
