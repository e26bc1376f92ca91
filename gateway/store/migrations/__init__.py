"""Alembic migrations for the ticketgate schema."""
