"""artifacts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hwnas_artifacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['hwnas_jobs.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trial_id'], ['hwnas_trials.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hwnas_artifacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hwnas_artifacts_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_hwnas_artifacts_trial_id'), ['trial_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('hwnas_artifacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hwnas_artifacts_trial_id'))
        batch_op.drop_index(batch_op.f('ix_hwnas_artifacts_job_id'))

    op.drop_table('hwnas_artifacts')
