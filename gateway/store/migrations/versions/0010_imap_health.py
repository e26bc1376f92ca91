"""imap_health: each IMAP account's OAuth2 token state and last reconciliation, for `status`

Revision ID: 0010_imap_health
Revises: 0009_participants_links
Create Date: 2026-12-07 15:30:00

SPEC §14: `status` shows each mailbox's token expiry and last refresh error, and what the last
reconciliation of its folders with the inbox found. A table of its own (not columns on imap_polls),
so it sits beside other migrations of the same day without touching their tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision = "0010_imap_health"
down_revision = "0009_participants_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_health",
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("token_expires_at", gateway.store.models.UTCDateTime(), nullable=True),
        sa.Column("token_refreshed_at", gateway.store.models.UTCDateTime(), nullable=True),
        sa.Column("token_error", sa.Text(), nullable=True),
        sa.Column("token_error_at", gateway.store.models.UTCDateTime(), nullable=True),
        sa.Column("reconciled_at", gateway.store.models.UTCDateTime(), nullable=True),
        sa.Column("unreconciled", sa.Integer(), nullable=True),
        sa.Column("unreconciled_detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_imap_health")),
    )


def downgrade() -> None:
    op.drop_table("imap_health")
