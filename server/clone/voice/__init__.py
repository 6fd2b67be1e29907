"""townhall.server.clone.voice."""
