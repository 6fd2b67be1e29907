"""townhall.server.clone: the leader's clone: brain (answers), voice, face, director."""
