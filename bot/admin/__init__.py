"""The admin pages under /admin: server-rendered (Jinja2), no JavaScript build, no CDN.

Surfaces translate, services decide: the routes here only read a session, call core services (OutboxAdmin,
ConnectionService, core.connection_report, SlaService, AdminLinkService) and render what they return.
Every response carries strict security headers; every POST checks the session's CSRF token; a request
without a valid session is sent to a page that says how to get a sign-in link. `install` mounts them.
"""

from bot.admin.pages import install

__all__ = ["install"]
