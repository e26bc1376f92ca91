"""participants and merges: who else is on a ticket, and which ticket it was merged into

Revision ID: 0009_participants_links
Revises: 0008_done_once
Create Date: 2026-12-07 14:30:00

SPEC §13 Copies: the people copied on a ticket (`participants`, one row per ticket and lower-cased
address, with who added them) are told of staff replies and status changes in Cc, and their replies
join the ticket. SPEC §13 Merges: `tickets.merged_into_id` names the ticket a merged one now lives
in; later mail threaded to the merged ticket follows it there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision = "0009_participants_links"
down_revision = "0008_done_once"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("added_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", gateway.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_participants_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participants")),
        sa.UniqueConstraint("ticket_id", "address", name=op.f("uq_participants_ticket_id")),
    )
    # A plain ADD COLUMN (on SQLite with its REFERENCES inline, which alembic cannot write there): a
    # batch copy of `tickets` on SQLite would lose its expression index (lower(requester_address)),
    # which reflection cannot see.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE tickets ADD COLUMN merged_into_id INTEGER "
            "CONSTRAINT fk_tickets_merged_into_id_tickets REFERENCES tickets (id)"
        )
    else:
        op.add_column("tickets", sa.Column("merged_into_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_tickets_merged_into_id_tickets"), "tickets", "tickets", ["merged_into_id"], ["id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("fk_tickets_merged_into_id_tickets"), "tickets", type_="foreignkey")
    op.drop_column("tickets", "merged_into_id")  # SQLite 3.35+ drops a column in place
    op.drop_table("participants")
