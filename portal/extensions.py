"""Unbound extensions, bound to an app in create_app()."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy.orm import Session

from portal.db import Base
from portal.ops.queue import FlaskHuey


class PortalSQLAlchemy(SQLAlchemy):
    """Flask-SQLAlchemy, with its request-scoped session typed as the Session it proxies.

    ``db.session`` is a ``scoped_session``: every attribute is that of the current
    request's (or app context's) ``Session``, which is what the services take.
    """

    session: Session  # type: ignore[assignment]  # a scoped_session proxies a Session


db = PortalSQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()
htmx = Htmx()
queue = FlaskHuey("portal")
