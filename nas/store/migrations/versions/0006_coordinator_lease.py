"""one coordinator per database: the heartbeat row is a lease, held by the coordinator whose token it carries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hwnas_coordinator', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('hwnas_coordinator', schema=None) as batch_op:
        batch_op.drop_column('token')
