"""The Python environment: ``pylock.toml`` planning, locked files, ``DIR/.venv``, running uv."""
