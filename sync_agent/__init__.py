"""kgate sync_agent package."""
