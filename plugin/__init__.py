"""townhall.plugin."""
