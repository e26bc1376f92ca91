"""indexes for the lookups by lower-cased address

Revision ID: 0004_lower_idx
Revises: 0003_imap
Create Date: 2026-11-25 22:10:00

The per-sender acknowledgement count (every new ticket) and the sender's earlier images (every
mail with attachments) compare `lower(address)`: without an index on that expression both read
the whole table, so each new ticket cost more than the one before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_lower_idx"
down_revision = "0003_imap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_to_template_created")
    op.create_index(
        "ix_outbox_to_lower_template_created",
        "outbox",
        [sa.text("lower(to_address)"), "template", "created_at"],
        unique=False,
    )
    op.create_index("ix_messages_author_lower", "messages", [sa.text("lower(author_address)")], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_author_lower", table_name="messages")
    op.drop_index("ix_outbox_to_lower_template_created", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_to_template_created", ["to_address", "template", "created_at"], unique=False
        )
