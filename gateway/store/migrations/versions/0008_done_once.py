"""done_once: the scheduler's once-only jobs (escalations per ticket, the digest per local day)

Revision ID: 0008_done_once
Revises: 0007_imap_polls
Create Date: 2026-12-01 14:40:00

SPEC §12: an overdue first response is escalated once per ticket and the digest is sent once per
day, across restarts and nodes. A row per job done, keyed by (job, key), makes the database refuse
the second one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision = "0008_done_once"
down_revision = "0007_imap_polls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "done_once",
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("done_at", gateway.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job", "key", name=op.f("pk_done_once")),
    )


def downgrade() -> None:
    op.drop_table("done_once")
