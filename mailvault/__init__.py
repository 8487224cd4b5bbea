"""mailvault: an email archive that keeps every message byte-exact, tamper-evident and findable."""

__version__ = "0.1.0"
