"""subsidies: policies and rules

Revision ID: 4b0cd11a6036
Revises: e7d5a90d19a1
Create Date: 2026-11-23 14:46:00.635927

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4b0cd11a6036'
down_revision = 'e7d5a90d19a1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subsidy_policies',
    sa.Column('district_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('operator_allowance_fen', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint('operator_allowance_fen >= 0', name=op.f('ck_subsidy_policies_operator_allowance_fen_not_negative')),
    sa.CheckConstraint('valid_to IS NULL OR valid_to >= valid_from', name=op.f('ck_subsidy_policies_valid_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_subsidy_policies_created_by_id_users')),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_subsidy_policies_district_id_districts')),
    sa.ForeignKeyConstraint(['ended_by_id'], ['users.id'], name=op.f('fk_subsidy_policies_ended_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_policies'))
    )
    with op.batch_alter_table('subsidy_policies', schema=None) as batch_op:
        batch_op.create_index('ix_subsidy_policies_district_id_valid_from', ['district_id', 'valid_from'], unique=False)

    op.create_table('subsidy_rules',
    sa.Column('policy_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('slot', sa.String(length=10), nullable=False),
    sa.Column('amount_fen', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('unit', sa.String(length=10), nullable=False),
    sa.Column('min_price_fen', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('max_per_day', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('max_per_month', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("slot IN ('breakfast', 'lunch', 'dinner', 'any')", name=op.f('ck_subsidy_rules_slot_known')),
    sa.CheckConstraint("unit = 'per_meal' OR max_per_day IS NULL", name=op.f('ck_subsidy_rules_per_day_without_daily_cap')),
    sa.CheckConstraint("unit IN ('per_meal', 'per_day')", name=op.f('ck_subsidy_rules_unit_known')),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_subsidy_rules_amount_fen_positive')),
    sa.CheckConstraint('max_per_day IS NULL OR max_per_day >= 1', name=op.f('ck_subsidy_rules_max_per_day_positive')),
    sa.CheckConstraint('max_per_month IS NULL OR max_per_month >= 1', name=op.f('ck_subsidy_rules_max_per_month_positive')),
    sa.CheckConstraint('min_price_fen IS NULL OR min_price_fen >= 0', name=op.f('ck_subsidy_rules_min_price_fen_not_negative')),
    sa.ForeignKeyConstraint(['policy_id'], ['subsidy_policies.id'], name=op.f('fk_subsidy_rules_policy_id_subsidy_policies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_rules')),
    sa.UniqueConstraint('policy_id', 'category', 'slot', name=op.f('uq_subsidy_rules_policy_id_category_slot'))
    )


def downgrade():
    op.drop_table('subsidy_rules')
    with op.batch_alter_table('subsidy_policies', schema=None) as batch_op:
        batch_op.drop_index('ix_subsidy_policies_district_id_valid_from')

    op.drop_table('subsidy_policies')
