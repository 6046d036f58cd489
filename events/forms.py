from urllib.parse import urlsplit

from django import forms

from events.models import SourceKind

MAX_ORIGINS = 50
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(value: str) -> str:
    """An origin as browsers send it in the Origin header: scheme://host[:port], lower case, no
    default port, no path. Raises ValueError with the reason otherwise."""
    text = value.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("must start with http:// or https://")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValueError("must be an origin only, without a path, query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    host = (parts.hostname or "").lower()
    if not host or "*" in host or " " in host:
        raise ValueError("needs a host name (no wildcards)")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    origin = f"{scheme}://{host}"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        origin += f":{port}"
    return origin


class SourceForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=SourceKind.choices, initial=SourceKind.WEB)
    enabled = forms.BooleanField(required=False, initial=True)
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One origin a line, e.g. https://www.example.com. Empty: any site may send "
        "(write keys are public anyway; this stops other sites using yours from a browser).",
    )

    require_consent = forms.BooleanField(
        required=False,
        help_text="The snippet sends and stores nothing until the site calls cdp.consent(true) "
        "(or cdp.consent({marketing: true, …})) from its consent banner.",
    )
    honor_gpc = forms.BooleanField(
        required=False,
        help_text="Browsers sending Global Privacy Control count as a refusal; only a consent "
        "grant made during a user action (a click on the banner) lifts it.",
    )
    retention_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=36500,
        help_text="Delete this source's events received more than this many days ago (checked "
        "hourly). Empty: keep them forever.",
    )

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def clean_allowed_origins(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["allowed_origins"].splitlines()]
        origins, errors = [], []
        for line in filter(None, lines):
            try:
                origins.append(normalise_origin(line))
            except ValueError as exc:
                errors.append(f"“{line[:100]}” {exc}.")
        if errors:
            raise forms.ValidationError(errors)
        origins = list(dict.fromkeys(origins))
        if len(origins) > MAX_ORIGINS:
            raise forms.ValidationError(f"At most {MAX_ORIGINS} origins.")
        return origins

    @classmethod
    def for_source(cls, source) -> "SourceForm":
        return cls(
            initial={
                "name": source.name,
                "kind": source.kind,
                "enabled": source.enabled,
                "allowed_origins": "\n".join(source.allowed_origins),
                "require_consent": source.require_consent,
                "honor_gpc": source.honor_gpc,
                "retention_days": source.retention_days,
            }
        )
