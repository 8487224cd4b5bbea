"""Remote mailboxes brought into the vault: IMAP and POP3 sources, their sync state, reconcile
and schedule. Each source hands raw bytes + Provenance to ingest.pipeline (the one way in)."""
