"""search engine: trial cache keys (dedupe across jobs), feasibility, predictions, refinement

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hwnas_trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cache_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('feasible', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('predicted', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('f1_before_refine', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('exact_match_before_refine', sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f('ix_hwnas_trials_cache_key'), ['cache_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hwnas_trials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hwnas_trials_cache_key'))
        batch_op.drop_column('exact_match_before_refine')
        batch_op.drop_column('f1_before_refine')
        batch_op.drop_column('predicted')
        batch_op.drop_column('feasible')
        batch_op.drop_column('cache_key')
