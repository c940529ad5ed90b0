"""Storage: SQLAlchemy models and session handling."""
