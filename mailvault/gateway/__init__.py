"""The gateway: encrypted journal mailboxes, and SMTP and POP3 proxies to mail providers."""
