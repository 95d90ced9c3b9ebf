"""kgate provisioning package."""
