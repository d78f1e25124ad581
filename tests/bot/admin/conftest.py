"""The admin pages are served by the same app as the REST API: their tests share its `api` fixture (a built
container on the test database, an httpx client on the app, API keys per scope)."""

from tests.bot.api.conftest import api  # noqa: F401 - a fixture, found by pytest through this conftest
