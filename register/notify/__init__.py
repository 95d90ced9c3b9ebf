"""Parents are told: contacts, a transactional outbox, a dispatcher, channels (docs/notifications.md)."""
