"""Backups of a vault (taken while ``serve`` runs), their verification, restoring one into a
new vault, and upgrading a vault of an older format (see docs/backup.md)."""
