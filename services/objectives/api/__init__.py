"""HTTP routers of the objectives service (thin: parse, call the service, commit)."""
