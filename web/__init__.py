"""The HTTP surface: Slack's request URL and the health endpoint, as one WSGI application."""

from web.wsgi import HealthReport, wsgi_application

__all__ = ["HealthReport", "wsgi_application"]
