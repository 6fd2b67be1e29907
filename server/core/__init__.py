"""The room authority's pure logic: no sockets, no event loop, no files."""
