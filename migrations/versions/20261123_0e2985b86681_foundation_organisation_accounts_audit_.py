"""foundation: organisation, accounts, audit log

Revision ID: 0e2985b86681
Revises: 
Create Date: 2026-11-23 13:26:03.941768

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0e2985b86681'
down_revision = None
branch_labels = None
depends_on = None


# The audit log is append-only: the database itself refuses to change or remove an entry.
AUDIT_APPEND_ONLY_POSTGRESQL = """
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER audit_entries_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();
"""
AUDIT_APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only (UPDATE refused)'); END",
    "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only (DELETE refused)'); END",
)


def upgrade():
    op.create_table('audit_entries',
    sa.Column('chain', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor_name', sa.String(length=80), nullable=False),
    sa.Column('operation', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('entity', sa.String(length=60), nullable=False),
    sa.Column('entity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('before', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('after', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('district_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('canteen_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries')),
    sa.UniqueConstraint('chain', 'seq', name=op.f('uq_audit_entries_chain_seq'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_canteen_id'), ['canteen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_district_id'), ['district_id'], unique=False)

    op.create_table('districts',
    sa.Column('code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_districts')),
    sa.UniqueConstraint('code', name=op.f('uq_districts_code')),
    sa.UniqueConstraint('name', name=op.f('uq_districts_name'))
    )
    op.create_table('communities',
    sa.Column('district_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_communities_district_id_districts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communities')),
    sa.UniqueConstraint('district_id', 'name', name=op.f('uq_communities_district_id_name'))
    )
    with op.batch_alter_table('communities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_communities_district_id'), ['district_id'], unique=False)

    op.create_table('canteens',
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.Enum('central_kitchen', 'canteen', 'meal_point', name='canteen_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('district_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('community_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('supplied_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('halal', sa.Boolean(), nullable=False),
    sa.Column('seats', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('opening_hours', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('closed_weekdays', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('closed_dates', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint('seats >= 0', name=op.f('ck_canteens_seats_not_negative')),
    sa.CheckConstraint('supplied_by_id IS NULL OR supplied_by_id <> id', name=op.f('ck_canteens_not_self_supplied')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_canteens_community_id_communities')),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_canteens_district_id_districts')),
    sa.ForeignKeyConstraint(['supplied_by_id'], ['canteens.id'], name=op.f('fk_canteens_supplied_by_id_canteens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_canteens')),
    sa.UniqueConstraint('code', name=op.f('uq_canteens_code'))
    )
    with op.batch_alter_table('canteens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_canteens_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_canteens_district_id'), ['district_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_canteens_supplied_by_id'), ['supplied_by_id'], unique=False)

    op.create_table('users',
    sa.Column('username', sa.String(length=60), nullable=False),
    sa.Column('display_name', sa.String(length=60), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('district_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('canteen_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=12), nullable=True),
    sa.Column('session_version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('failed_login_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('first_failed_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_login_allowed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("(role = 'admin' AND district_id IS NULL AND canteen_id IS NULL) OR (role = 'district_officer' AND district_id IS NOT NULL AND canteen_id IS NULL) OR (role IN ('canteen_staff', 'kitchen_staff') AND canteen_id IS NOT NULL AND district_id IS NULL)", name=op.f('ck_users_role_matches_scope')),
    sa.CheckConstraint('failed_login_count >= 0', name=op.f('ck_users_failed_login_count_not_negative')),
    sa.ForeignKeyConstraint(['canteen_id'], ['canteens.id'], name=op.f('fk_users_canteen_id_canteens')),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_users_district_id_districts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_canteen_id'), ['canteen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_users_district_id'), ['district_id'], unique=False)

    op.create_table('api_tokens',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    if op.get_context().dialect.name == "postgresql":
        op.execute(AUDIT_APPEND_ONLY_POSTGRESQL)
    else:
        for statement in AUDIT_APPEND_ONLY_SQLITE:
            op.execute(statement)



def downgrade():
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION audit_entries_append_only()")
    else:
        op.execute("DROP TRIGGER audit_entries_no_update")
        op.execute("DROP TRIGGER audit_entries_no_delete")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_district_id'))
        batch_op.drop_index(batch_op.f('ix_users_canteen_id'))

    op.drop_table('users')
    with op.batch_alter_table('canteens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_canteens_supplied_by_id'))
        batch_op.drop_index(batch_op.f('ix_canteens_district_id'))
        batch_op.drop_index(batch_op.f('ix_canteens_community_id'))

    op.drop_table('canteens')
    with op.batch_alter_table('communities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_communities_district_id'))

    op.drop_table('communities')
    op.drop_table('districts')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_district_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_canteen_id'))

    op.drop_table('audit_entries')
