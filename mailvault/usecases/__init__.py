"""What a person can do with the archive, one function each, for every face.

Each use case takes the vault and a ``Principal`` (who, roles, own addresses), checks what
that principal may do, does it through the capabilities, and writes the audit entry. The
command line, the web pages and the API are faces over these functions: they parse input,
call them and render the result, and never decide who may see what themselves.
"""
