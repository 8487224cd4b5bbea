"""The people who use the archive: principals and roles (what each may do), users kept in the
catalog with Argon2id passwords and optional TOTP, sign-in with lock-out, and API tokens.

The use cases check a Principal against the role table (``principal.allows`` / ``require``);
the faces (command line, web, API) only ever obtain a Principal from here."""
