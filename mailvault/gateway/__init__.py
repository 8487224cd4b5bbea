"""The gateway: encrypted mailboxes that hold mail until it is pulled, and the proxies and
POP3 service that fill and serve them."""
