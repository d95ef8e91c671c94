"""Rollback from a backup: in place (UUID maps and links), the shape put back, or a full restore."""
