"""Logo files for the setup tests: a real PNG, a clean SVG and a malicious one."""

from __future__ import annotations

import io

from PIL import Image


def png(width: int = 40, height: int = 20, color=(20, 90, 200, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), color).save(out, "PNG")
    return out.getvalue()


CLEAN_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 20">'
    b'<rect width="40" height="20" fill="#0a5"/><text x="2" y="14">Logo</text></svg>'
)

MALICIOUS_SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 40 20" onload="alert('svg')">
  <script>alert('script')</script>
  <foreignObject width="40" height="20"><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>
  <a xlink:href="javascript:alert('a')"><rect width="5" height="5"/></a>
  <image href="https://tracker.example/pixel.png" width="1" height="1"/>
  <style>@import url(https://evil.example/x.css);</style>
  <rect width="40" height="20" fill="url(https://evil.example/#p)" onclick="alert('click')"/>
  <use xlink:href="https://evil.example/sprite.svg#icon"/>
  <circle cx="10" cy="10" r="5" fill="#c00" style="fill:#c00"/>
</svg>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<svg xmlns="http://www.w3.org/2000/svg">&lol2;</svg>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>"""
