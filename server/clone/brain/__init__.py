"""townhall.server.clone.brain."""
