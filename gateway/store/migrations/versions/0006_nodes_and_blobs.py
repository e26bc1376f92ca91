"""node heartbeats, the claims' node, and blobs kept in the database

Revision ID: 0006_nodes
Revises: 0005_inbox_release
Create Date: 2026-12-01 11:40:00

Several `serve` nodes on one PostgreSQL (SPEC §9): each writes a `nodes` row and beats it; inbox
and outbox claims name the node, so a dead node's claims are taken over when its heartbeat stops;
`blobs` holds screenshot and attachment bytes where every node reaches them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision = "0006_nodes"
down_revision = "0005_inbox_release"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", gateway.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", gateway.store.models.UTCDateTime(), nullable=False),
        sa.Column("last_beat", gateway.store.models.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", gateway.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_node", sa.Integer(), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_node", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_node")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_node")
    op.drop_table("nodes")
    op.drop_table("blobs")
