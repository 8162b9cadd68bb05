"""The admin console's blueprint, on which every admin page module registers its routes."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
