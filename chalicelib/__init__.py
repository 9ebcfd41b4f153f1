"""studio-uploads: the business logic behind app.py (see docs/architecture.md)."""
