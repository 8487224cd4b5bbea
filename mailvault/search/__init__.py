"""Finding messages: the query language, the full-text index, attachment text extraction."""
