"""progress inside long stages: the job's current stage item and each running trial (step / total, loss, ETA)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hwnas_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stage_progress', sa.JSON(), nullable=True))
    with op.batch_alter_table('hwnas_trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('progress', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hwnas_trials', schema=None) as batch_op:
        batch_op.drop_column('progress')
    with op.batch_alter_table('hwnas_jobs', schema=None) as batch_op:
        batch_op.drop_column('stage_progress')
