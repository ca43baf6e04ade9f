"""REST endpoints: tokens, the caller (`/me`) and accounts (admin)."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from canteen.auth import schemas
from canteen.auth import service as auth_service
from canteen.core.api import Blueprint, one_page, public
from canteen.extensions import limiter

blp = Blueprint("api_auth", __name__, url_prefix="/api/v1", description="Tokens, the caller and accounts.")


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@blp.route("/auth/token")
class Token(MethodView):
    decorators = [limiter.limit(_login_rate_limit, methods=["POST"])]

    @public
    @blp.arguments(schemas.TokenRequestSchema)
    @blp.response(201, schemas.TokenSchema)
    def post(self, data):
        """Exchange a username and password for a bearer token

        The token is shown once and only its SHA-256 is stored. Five failed attempts within
        15 minutes lock the account for a while (429 `account_locked`).
        """
        user = auth_service.authenticate(username=data["username"], password=data["password"])
        issued = auth_service.issue_token(user=user, name=data.get("name", ""))
        return {"token": issued.token, "expires_at": issued.record.expires_at}

    @blp.response(204)
    def delete(self):
        """Revoke the token this request was made with"""
        auth_service.revoke_token(g.api_token.id)


@blp.route("/auth/tokens")
class Tokens(MethodView):
    @blp.response(200, schemas.TokenInfoSchema(many=True))
    def get(self):
        """List the caller's own tokens"""
        return auth_service.list_tokens(user=g.user)


@blp.route("/auth/tokens/<int:token_id>/revoke")
class TokenRevoke(MethodView):
    @blp.response(200, schemas.TokenInfoSchema)
    def post(self, token_id):
        """Revoke one of the caller's tokens (admin: anyone's)"""
        return auth_service.revoke_token(token_id)


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, schemas.MeSchema)
    def get(self):
        """The caller: id, username, role and scope"""
        return g.user


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(schemas.UserQueryArgsSchema, location="query")
    @blp.response(200, schemas.UserSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List accounts (admin)"""
        return one_page(auth_service.list_users, args, pagination_parameters)

    @blp.arguments(schemas.UserCreateSchema)
    @blp.response(201, schemas.UserSchema)
    def post(self, data):
        """Create an account (admin)"""
        return auth_service.create_user(**data)


@blp.route("/users/<int:user_id>")
class UserById(MethodView):
    @blp.response(200, schemas.UserSchema)
    def get(self, user_id):
        """Get an account (admin)"""
        return auth_service.get_user(user_id)

    @blp.arguments(schemas.UserUpdateSchema)
    @blp.response(200, schemas.UserSchema)
    def patch(self, data, user_id):
        """Change an account (admin); role, scope, password or disabling end its sessions"""
        return auth_service.update_user(user_id, **data, fields_given=frozenset(data))


@blp.route("/users/<int:user_id>/unlock")
class UserUnlock(MethodView):
    @blp.response(200, schemas.UserSchema)
    def post(self, user_id):
        """Lift a login lock (admin)"""
        return auth_service.unlock_user(user_id)
