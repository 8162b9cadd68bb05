"""The baseline application: a bare Flask "hello" route, served like the portal."""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello() -> str:
    """The cheapest possible response."""
    return "hello"
