"""Alembic migrations; ``orchestrator db upgrade`` (or ``alembic upgrade head``) builds the schema."""
