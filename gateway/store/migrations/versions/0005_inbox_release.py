"""inbox release mark, and the index the flood limit counts with

Revision ID: 0005_inbox_release
Revises: 0004_lower_idx
Create Date: 2026-12-01 11:30:00

`inbox release ID` marks a `spam` or `flood` mail so that processing it again bypasses the verdict
and the limit (`inbox.released_at`). The per-sender flood limit counts the sender's tickets of the
last hour by lower-cased address on every new ticket; without an index on that expression the
count reads the whole tickets table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_inbox_release"
down_revision = "0004_lower_idx"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("released_at", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_tickets_requester_lower_created",
        "tickets",
        [sa.text("lower(requester_address)"), "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_requester_lower_created", table_name="tickets")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("released_at")
