"""The schema comes only from migrations: one head, upgrade from empty works, the result matches
the models (`flask db check`), and downgrade to empty then upgrade again works — on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.conftest import make_app


@pytest.fixture(scope="module")
def fresh_app(new_database):
    app = make_app(new_database("migrations"))
    yield app
    with app.app_context():
        from canteen.extensions import db

        db.engine.dispose()


pytestmark = pytest.mark.no_db


def test_single_head(fresh_app):
    with fresh_app.app_context():
        config = fresh_app.extensions["migrate"].migrate.get_config()
        assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_upgrade_from_empty_matches_models_and_downgrades(fresh_app):
    import flask_migrate

    from canteen.extensions import db

    with fresh_app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == [], differences
        result = fresh_app.test_cli_runner().invoke(args=["db", "check"])
        assert result.exit_code == 0, result.output  # alembic's check exits 1 on any difference
        flask_migrate.downgrade(revision="base")
        with db.engine.connect() as connection:
            remaining = set(db.inspect(connection).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        flask_migrate.upgrade()
