"""kgate hardware package."""
