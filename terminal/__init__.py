"""kgate terminal package."""
