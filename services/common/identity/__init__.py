"""People's identities from the institution's OpenID Connect provider: bearer JWTs checked
against trusted issuers' keys (``jwt``, ``jwks``), and their roles mapped to scopes (``roles``).

API keys (services.common.auth) stay for machines; a token that looks like a JWT is checked
here instead, and both end as the same ``Principal``.
"""
