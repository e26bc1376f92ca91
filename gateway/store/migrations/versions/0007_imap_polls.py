"""each IMAP account's last poll and last error, for `ticketgate status`

Revision ID: 0007_imap_polls
Revises: 0006_nodes
Create Date: 2026-12-01 12:50:00

The last poll used to be only a metric of the node that polls; `status` reads the database, so the
polling node records it there (and its last error) for whichever node the operator asks.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision = "0007_imap_polls"
down_revision = "0006_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_polls",
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("last_poll_at", gateway.store.models.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", gateway.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_imap_polls")),
    )


def downgrade() -> None:
    op.drop_table("imap_polls")
