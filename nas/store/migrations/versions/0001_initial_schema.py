"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hwnas_jobs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('study_name', sa.String(length=64), nullable=False),
    sa.Column('synthetic_data', sa.Boolean(), nullable=False),
    sa.Column('teacher_dir', sa.Text(), nullable=True),
    sa.Column('teacher_metrics', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hwnas_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hwnas_jobs_status'), ['status'], unique=False)

    op.create_table('hwnas_baselines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('precision', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('f1', sa.Float(), nullable=True),
    sa.Column('exact_match', sa.Float(), nullable=True),
    sa.Column('parameters', sa.Integer(), nullable=True),
    sa.Column('stage_seconds', sa.JSON(), nullable=True),
    sa.Column('artifact_dir', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['hwnas_jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'precision')
    )
    with op.batch_alter_table('hwnas_baselines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hwnas_baselines_job_id'), ['job_id'], unique=False)

    op.create_table('hwnas_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['hwnas_jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hwnas_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hwnas_events_job_id'), ['job_id'], unique=False)

    op.create_table('hwnas_trials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('optuna_trial_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('f1', sa.Float(), nullable=True),
    sa.Column('exact_match', sa.Float(), nullable=True),
    sa.Column('eval_questions', sa.Integer(), nullable=True),
    sa.Column('parameters', sa.Integer(), nullable=True),
    sa.Column('ir_size_bytes', sa.Integer(), nullable=True),
    sa.Column('stage_seconds', sa.JSON(), nullable=True),
    sa.Column('artifact_dir', sa.Text(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['hwnas_jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'number')
    )
    with op.batch_alter_table('hwnas_trials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hwnas_trials_job_id'), ['job_id'], unique=False)

    op.create_table('hwnas_measurements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=True),
    sa.Column('baseline_id', sa.Integer(), nullable=True),
    sa.Column('target', sa.String(length=64), nullable=False),
    sa.Column('precision', sa.String(length=8), nullable=False),
    sa.Column('seq_len', sa.Integer(), nullable=False),
    sa.Column('latency_batch', sa.Integer(), nullable=False),
    sa.Column('p50_ms', sa.Float(), nullable=False),
    sa.Column('p90_ms', sa.Float(), nullable=False),
    sa.Column('p99_ms', sa.Float(), nullable=False),
    sa.Column('latency_iterations', sa.Integer(), nullable=False),
    sa.Column('throughput_batch', sa.Integer(), nullable=False),
    sa.Column('throughput_sps', sa.Float(), nullable=False),
    sa.Column('fingerprint', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['baseline_id'], ['hwnas_baselines.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trial_id'], ['hwnas_trials.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hwnas_measurements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hwnas_measurements_baseline_id'), ['baseline_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_hwnas_measurements_trial_id'), ['trial_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('hwnas_measurements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hwnas_measurements_trial_id'))
        batch_op.drop_index(batch_op.f('ix_hwnas_measurements_baseline_id'))

    op.drop_table('hwnas_measurements')
    with op.batch_alter_table('hwnas_trials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hwnas_trials_job_id'))

    op.drop_table('hwnas_trials')
    with op.batch_alter_table('hwnas_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hwnas_events_job_id'))

    op.drop_table('hwnas_events')
    with op.batch_alter_table('hwnas_baselines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hwnas_baselines_job_id'))

    op.drop_table('hwnas_baselines')
    with op.batch_alter_table('hwnas_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hwnas_jobs_status'))

    op.drop_table('hwnas_jobs')
