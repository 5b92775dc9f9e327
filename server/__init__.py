"""callassist server: Starlette app, WebSocket endpoints, bus, store, CLI."""
