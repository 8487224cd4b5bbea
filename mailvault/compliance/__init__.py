"""What makes the archive defensible: audit, tiers, retention, holds, disposition."""
