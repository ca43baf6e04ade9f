"""Entry point: `flask --app app run`, `gunicorn 'app:app'`."""

from canteen import create_app

app = create_app()
