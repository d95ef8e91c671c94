"""Backups: taking one, verifying it, its manifest, its archive and data files, listing and pruning them."""
