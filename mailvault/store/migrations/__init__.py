"""The catalog's versioned schema migrations (Alembic): ``versions/`` holds one file per
change of the catalog's tables, ``env.py`` runs them on the connection it is given.
``store/vault_format.py`` is the one caller."""
