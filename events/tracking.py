"""The browser side of a source: the snippet site owners paste, the cdp.js library it loads, and
the settings document Segment's own analytics.js fetches. Pure functions, no database."""

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import rjsmin
from django.conf import settings
from django.http import HttpRequest

LIBRARY_PATH = Path(__file__).resolve().parent / "js" / "cdp.js"
SNIPPET_VERSION = "1"

# The stub records calls made before cdp.js arrives; cdp.js replays them in order. Kept short
# because it is pasted into every page of a site; __KEY__, __HOST__ and __VERSION__ become JS
# string literals, __CONSENT__ the source's consent load options (or nothing).
_SNIPPET = """<script>
!function(){var cdp=window.cdp=window.cdp||[];if(cdp.initialized)return;
if(cdp.invoked){window.console&&console.error&&console.error("cdp snippet included twice");return}
cdp.invoked=!0;cdp.methods=["page","track","identify","alias","group","reset","consent","ready"];
cdp.factory=function(m){return function(){var a=Array.prototype.slice.call(arguments);
a.unshift(m);cdp.push(a);return cdp}};
for(var i=0;i<cdp.methods.length;i++){var m=cdp.methods[i];cdp[m]=cdp.factory(m)}
cdp.load=function(k,o){var s=document.createElement("script");s.async=!0;
s.src=((o&&o.host)||__HOST__)+"/js/cdp.js";var f=document.getElementsByTagName("script")[0];
f.parentNode.insertBefore(s,f);cdp._writeKey=k;cdp._loadOptions=o};
cdp.SNIPPET_VERSION=__VERSION__;cdp.load(__KEY__,{host:__HOST____CONSENT__});
}();
</script>"""


def public_host(request: HttpRequest) -> str:
    """This app's origin as tracked sites reach it: settings.CDP_PUBLIC_HOST, else the request's."""
    configured = getattr(settings, "CDP_PUBLIC_HOST", "")
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.get_host()}"


def _js_string(value: str) -> str:
    # A JSON string is a JS string literal; escaping <, > and & keeps it inert inside <script>.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def snippet(*, write_key: str, host: str, require_consent: bool = False, honor_gpc: bool = False) -> str:
    """The snippet to paste. The source's consent settings travel as load options: the library
    must know them before its first call, without waiting for a request (which would also have
    to be made before consent). So changing them means pasting the snippet again."""
    values = {"KEY": write_key, "HOST": host, "VERSION": SNIPPET_VERSION}
    consent = (',consent:"required"' if require_consent else "") + (",respectGPC:true" if honor_gpc else "")
    # One pass, so a value can never be mistaken for a placeholder.
    return re.sub(
        r"__(KEY|HOST|VERSION|CONSENT)__",
        lambda m: consent if m.group(1) == "CONSENT" else _js_string(values[m.group(1)]),
        _SNIPPET,
    )


def source_snippet(source, *, host: str) -> str:
    return snippet(
        write_key=source.write_key,
        host=host,
        require_consent=source.require_consent,
        honor_gpc=source.honor_gpc,
    )


@dataclass(frozen=True, slots=True)
class Library:
    body: bytes
    gzipped: bytes
    etag: str
    version: str


@lru_cache(maxsize=2)
def _build(mtime_ns: int) -> Library:
    source = LIBRARY_PATH.read_text(encoding="utf-8")
    # Whitespace and comments only (no renaming), keeping the /*! licence line.
    body = rjsmin.jsmin(source, keep_bang_comments=True).encode()
    digest = hashlib.sha256(body).hexdigest()[:20]
    # mtime=0: the same source gives the same bytes on every worker, so ETags agree.
    return Library(body=body, gzipped=gzip.compress(body, 9, mtime=0), etag=f'"{digest}"', version=digest)


def library() -> Library:
    """The minified library, built once per process (again when the file changes, in development)."""
    return _build(LIBRARY_PATH.stat().st_mtime_ns if settings.DEBUG else 0)


def segment_settings(*, write_key: str, host: str) -> dict:
    """The settings document that Segment's analytics.js (analytics-next) fetches from
    `<cdnURL>/v1/projects/<writeKey>/settings` before it sends anything: its "Segment.io"
    integration then posts to `<protocol>://<apiHost>/<t|p|i|...>`, i.e. this app's /v1 API.
    Only Segment.io is enabled (no device-mode destinations to load), and `metrics.sampleRate` 0
    stops the library reporting its own metrics to Segment's servers."""
    parts = urlsplit(host)
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{parts.netloc}{parts.path.rstrip('/')}/v1",
                "protocol": parts.scheme or "https",
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
