"""townhall.server.clone.face."""
