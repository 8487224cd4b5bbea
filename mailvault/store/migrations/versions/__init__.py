"""One migration per file, named by its revision number (the vault format it makes)."""
