"""Language of the pages: Chinese by default, English on request (remembered in the session)."""

from __future__ import annotations

from flask import current_app, g, request, session


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    wanted = request.args.get("lang") if request else None
    if wanted in languages:
        session["lang"] = wanted
        return wanted
    if session.get("lang") in languages:
        return session["lang"]
    user = g.get("user")
    if user is not None and user.language in languages:
        return user.language
    return current_app.config["BABEL_DEFAULT_LOCALE"]
