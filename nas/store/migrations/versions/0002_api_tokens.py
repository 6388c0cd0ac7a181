"""api tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hwnas_api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hwnas_api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hwnas_api_tokens_token_hash'), ['token_hash'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('hwnas_api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hwnas_api_tokens_token_hash'))

    op.drop_table('hwnas_api_tokens')
