"""Who a caller is when they are a person: verified tokens, roles, branch limits."""
