"""Languages: English and German pages, amounts and dates by locale, the choice remembered."""

from __future__ import annotations

from babel.messages.pofile import read_po

from portal.config import ROOT
from portal.tenancy.models import User


def test_german_catalog_translates_every_message():
    with (ROOT / "translations/de/LC_MESSAGES/messages.po").open("rb") as po_file:
        catalog = read_po(po_file)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []
    assert not [m.id for m in catalog if m.id and m.fuzzy]


def test_browser_language_picks_german(client):
    page = client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
    html = page.get_data(as_text=True)
    assert '<html lang="de">' in html and "Anmeldung zur Abrechnung" in html


def test_language_choice_is_remembered_on_the_user(client, auth, world, session):
    auth.login(world.a.owner.email)
    response = client.post("/language", data={"language": "de", "next": "/"})
    assert response.status_code == 303 and response.location == "/"
    html = client.get("/").get_data(as_text=True)
    assert "Offener Betrag" in html
    assert "102,94\xa0€" in html  # German number format
    session.expire_all()
    assert session.get(User, world.a.owner.id).locale == "de"
    # A new session of the same user starts in German.
    auth.logout()
    auth.login(world.a.owner.email)
    assert "Offener Betrag" in client.get("/").get_data(as_text=True)


def test_unknown_language_is_ignored(client, auth, world):
    auth.login(world.a.owner.email)
    client.post("/language", data={"language": "xx"})
    assert "Open amount" in client.get("/", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )


def test_password_reset_email_in_the_users_language(client, world, mailbox, session):
    user = session.get(User, world.a.owner.id)
    user.locale = "de"
    session.commit()
    client.post("/password/forgot", data={"email": user.email})
    [message] = mailbox.wait_for(1)
    assert message["Subject"] == "Passwort für das Abrechnungsportal zurücksetzen"
    assert "Hallo" in message.get_body(("plain",)).get_content()
