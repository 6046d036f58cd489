# The real-browser fixture of the browser tests, shared rather than copied.
from tests.browser.conftest import browser  # noqa: F401
