"""the job's deployment choice: the precision its subnets are built and measured in, and why

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hwnas_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deployment', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hwnas_jobs', schema=None) as batch_op:
        batch_op.drop_column('deployment')
