"""kgate register package."""
