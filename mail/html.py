"""Email HTML made safe to show (nh3, the Rust ammonia sanitiser): applied when a message is
stored and again when it is rendered, so a body written by any path (sync, dropbox, a send) is
never shown unsanitised. Scripts, styles, event handlers, forms, iframes and javascript: URLs
go; remote images are kept as links only when the viewer asks (privacy: a remote image is a
tracking pixel of its own)."""

import nh3

# Tags a message's layout needs (tables are how HTML email is laid out); nothing executable.
TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "div",
    "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "*": {"title", "dir", "lang", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "width"},
    "th": {"colspan", "rowspan", "width"},
    "table": {"width", "border", "cellpadding", "cellspacing"},
    "font": {"color"},
}
URL_SCHEMES = {"http", "https", "mailto", "cid"}


def _no_image_source(tag: str, attribute: str, value: str) -> str | None:
    return None if tag == "img" and attribute == "src" else value


def html_sanitise(html: str, *, images: bool = True) -> str:
    """`html` with everything that could run or restyle the page removed; with images=False, no
    image loads either (a remote image tells the sender the message was read: the thread view
    shows none; cid: parts are not served)."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=None if images else _no_image_source,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
