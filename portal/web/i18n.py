"""Locale selection: the user's saved language, then the session, then the browser."""

from __future__ import annotations

from flask import current_app, g, has_request_context, request, session
from flask_babel import get_locale, get_translations
from flask_login import current_user


def select_locale() -> str:
    """The locale for this request."""
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # jobs and commands render with force_locale()
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if session.get("locale") in languages:
        return session["locale"]
    return request.accept_languages.best_match(languages) or languages[0]


def current_translations():
    """The request's translations, looked up once per locale instead of once per string.

    Flask-Babel finds them through several context lookups on every call, and a page asks
    for a hundred or more strings. Cached on Flask-Babel's own request context beside the
    locale object it belongs to, so ``force_locale`` (an e-mail in the recipient's
    language, say) switches translations with the locale.
    """
    context = g.get("_flask_babel") if g else None
    locale = getattr(context, "babel_locale", None)
    # Not selected yet (or outside a request): Flask-Babel decides.
    if context is None or locale is None:
        return get_translations()
    cached = getattr(context, "portal_translations", None)
    if cached is None or cached[0] is not locale:
        cached = (locale, get_translations())
        context.portal_translations = cached
    return cached[1]


def current_locale_name() -> str:
    """The request's locale as a string ("en", "de"), with the same per-locale cache."""
    context = g.get("_flask_babel") if g else None
    locale = getattr(context, "babel_locale", None)
    return str(locale if locale is not None else (get_locale() or "en"))


def install_template_gettext(app) -> None:
    """Give templates ``_``/``gettext``/``ngettext`` that use :func:`current_translations`."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: current_translations().ugettext(s),
        ngettext=lambda s, p, n: current_translations().ungettext(s, p, n),
        pgettext=lambda c, s: current_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: current_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
