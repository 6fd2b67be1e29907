"""The asyncio shell: WebSocket and HTTP endpoints, sessions, tokens."""
