"""HTTP routers of the ingest service (thin: parsing and status codes; logic in the pipeline)."""
