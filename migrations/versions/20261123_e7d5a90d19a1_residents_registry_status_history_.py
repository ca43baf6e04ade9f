"""residents: registry, status history, categories, meal cards

Revision ID: e7d5a90d19a1
Revises: 0e2985b86681
Create Date: 2026-11-23 13:38:32.669101

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'e7d5a90d19a1'
down_revision = '0e2985b86681'
branch_labels = None
depends_on = None


def upgrade():
    
    op.create_table('residents',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('name_pinyin', sa.String(length=200), nullable=False),
    sa.Column('name_initials', sa.String(length=50), nullable=False),
    sa.Column('id_doc_type', sa.String(length=30), nullable=False),
    sa.Column('id_number', sa.Text(), nullable=False),
    sa.Column('id_number_index', sa.String(length=64), nullable=False),
    sa.Column('id_tail4_index', sa.String(length=64), nullable=False),
    sa.Column('id_tail5_index', sa.String(length=64), nullable=False),
    sa.Column('id_tail6_index', sa.String(length=64), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('district_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('community_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('home_canteen_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('emergency_contact', sa.Text(), nullable=True),
    sa.Column('delivery_registered', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('status_effective_on', sa.Date(), nullable=False),
    sa.Column('diet_restrictions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('allergens', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('diet_notes', sa.Text(), nullable=False),
    sa.Column('consent_given_on', sa.Date(), nullable=True),
    sa.Column('consent_method', sa.String(length=20), nullable=True),
    sa.Column('consent_recorded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('registered_on', sa.Date(), nullable=False),
    sa.Column('registered_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("id_doc_type IN ('resident_id_card', 'hmt_residence_permit', 'passport')", name=op.f('ck_residents_id_doc_type_known')),
    sa.CheckConstraint("sex IN ('male', 'female')", name=op.f('ck_residents_sex_known')),
    sa.CheckConstraint("status IN ('active', 'suspended', 'deceased', 'moved_out')", name=op.f('ck_residents_status_known')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_residents_community_id_communities')),
    sa.ForeignKeyConstraint(['consent_recorded_by_id'], ['users.id'], name=op.f('fk_residents_consent_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_residents_district_id_districts')),
    sa.ForeignKeyConstraint(['home_canteen_id'], ['canteens.id'], name=op.f('fk_residents_home_canteen_id_canteens')),
    sa.ForeignKeyConstraint(['registered_by_id'], ['users.id'], name=op.f('fk_residents_registered_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_residents')),
    sa.UniqueConstraint('id_number_index', name=op.f('uq_residents_id_number_index'))
    )
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_residents_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_residents_district_id'), ['district_id'], unique=False)
        batch_op.create_index('ix_residents_district_id_id_tail4_index', ['district_id', 'id_tail4_index'], unique=False)
        batch_op.create_index('ix_residents_district_id_id_tail5_index', ['district_id', 'id_tail5_index'], unique=False)
        batch_op.create_index('ix_residents_district_id_id_tail6_index', ['district_id', 'id_tail6_index'], unique=False)
        batch_op.create_index('ix_residents_district_id_name', ['district_id', 'name'], unique=False, postgresql_ops={'name': 'text_pattern_ops'})
        batch_op.create_index('ix_residents_district_id_name_initials', ['district_id', 'name_initials'], unique=False, postgresql_ops={'name_initials': 'text_pattern_ops'})
        batch_op.create_index('ix_residents_district_id_name_pinyin', ['district_id', 'name_pinyin'], unique=False, postgresql_ops={'name_pinyin': 'text_pattern_ops'})
        batch_op.create_index(batch_op.f('ix_residents_home_canteen_id'), ['home_canteen_id'], unique=False)

    op.create_table('meal_cards',
    sa.Column('resident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_no', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('blocked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('block_reason', sa.String(length=200), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("status IN ('active', 'blocked')", name=op.f('ck_meal_cards_status_known')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_meal_cards_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meal_cards')),
    sa.UniqueConstraint('card_no', name=op.f('uq_meal_cards_card_no'))
    )
    with op.batch_alter_table('meal_cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meal_cards_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index('uq_meal_cards_active_resident', ['resident_id'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.create_table('resident_categories',
    sa.Column('resident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('evidence', sa.String(length=500), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('verified_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to >= valid_from', name=op.f('ck_resident_categories_valid_range')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_resident_categories_resident_id_residents')),
    sa.ForeignKeyConstraint(['verified_by_id'], ['users.id'], name=op.f('fk_resident_categories_verified_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_categories'))
    )
    with op.batch_alter_table('resident_categories', schema=None) as batch_op:
        batch_op.create_index('ix_resident_categories_resident_id_category', ['resident_id', 'category'], unique=False)

    op.create_table('resident_status_changes',
    sa.Column('resident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('recorded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("status IN ('active', 'suspended', 'deceased', 'moved_out')", name=op.f('ck_resident_status_changes_status_known')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_resident_status_changes_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_resident_status_changes_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_status_changes'))
    )
    with op.batch_alter_table('resident_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resident_status_changes_resident_id'), ['resident_id'], unique=False)

    


def downgrade():
    
    with op.batch_alter_table('resident_status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resident_status_changes_resident_id'))

    op.drop_table('resident_status_changes')
    with op.batch_alter_table('resident_categories', schema=None) as batch_op:
        batch_op.drop_index('ix_resident_categories_resident_id_category')

    op.drop_table('resident_categories')
    with op.batch_alter_table('meal_cards', schema=None) as batch_op:
        batch_op.drop_index('uq_meal_cards_active_resident', sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))
        batch_op.drop_index(batch_op.f('ix_meal_cards_resident_id'))

    op.drop_table('meal_cards')
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_residents_home_canteen_id'))
        batch_op.drop_index('ix_residents_district_id_name_pinyin', postgresql_ops={'name_pinyin': 'text_pattern_ops'})
        batch_op.drop_index('ix_residents_district_id_name_initials', postgresql_ops={'name_initials': 'text_pattern_ops'})
        batch_op.drop_index('ix_residents_district_id_name', postgresql_ops={'name': 'text_pattern_ops'})
        batch_op.drop_index('ix_residents_district_id_id_tail6_index')
        batch_op.drop_index('ix_residents_district_id_id_tail5_index')
        batch_op.drop_index('ix_residents_district_id_id_tail4_index')
        batch_op.drop_index(batch_op.f('ix_residents_district_id'))
        batch_op.drop_index(batch_op.f('ix_residents_community_id'))

    op.drop_table('residents')
    
