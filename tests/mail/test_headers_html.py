from mail.headers import message_key
from mail.html import html_sanitise


def test_message_ids_written_differently_are_one_key():
    assert message_key(header_message_id="<Abc.1@MAIL.Example.COM>") == "Abc.1@mail.example.com"
    assert message_key(header_message_id=" Abc.1@mail.example.com ") == "Abc.1@mail.example.com"
    # the local part stays case-sensitive (RFC 5322)
    assert message_key(header_message_id="<abc.1@mail.example.com>") != message_key(
        header_message_id="<Abc.1@mail.example.com>"
    )


def test_a_message_without_an_id_is_keyed_by_what_its_copies_repeat():
    one = message_key(header_message_id="", fallback=("ada@example.com", "Mon, 2 Nov 2026", "Hi"))
    two = message_key(header_message_id="  ", fallback=("ada@example.com", "Mon, 2 Nov 2026", "Hi"))
    other = message_key(header_message_id="", fallback=("ada@example.com", "Mon, 2 Nov 2026", "Hello"))
    assert one == two and one.startswith("sha256:") and one != other


def test_sanitised_html_keeps_layout_and_drops_everything_executable():
    dirty = (
        '<table><tr><td style="color:red" onclick="steal()">Hi <b>Ada</b></td></tr></table>'
        "<script>alert(1)</script><style>body{display:none}</style>"
        '<a href="javascript:alert(1)">x</a><a href="https://example.com/p">ok</a>'
        '<img src="x" onerror="alert(1)"><iframe src="https://evil.test"></iframe>'
    )
    clean = html_sanitise(dirty)
    for bad in ("script", "alert", "onclick", "onerror", "iframe", "<style", "javascript:", "style="):
        assert bad not in clean
    assert "<b>Ada</b>" in clean and "<td>" in clean
    assert 'href="https://example.com/p"' in clean and 'rel="noopener noreferrer nofollow"' in clean
