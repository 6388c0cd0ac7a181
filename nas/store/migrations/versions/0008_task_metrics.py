"""the task's figures besides F1/EM (SQuAD v2.0: HasAns/NoAns, the null threshold) on trials and baselines

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hwnas_trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('metrics', sa.JSON(), nullable=True))
    with op.batch_alter_table('hwnas_baselines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('metrics', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hwnas_baselines', schema=None) as batch_op:
        batch_op.drop_column('metrics')
    with op.batch_alter_table('hwnas_trials', schema=None) as batch_op:
        batch_op.drop_column('metrics')
