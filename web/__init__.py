"""The HTTP surface: Slack's request URL and the health endpoint, as one WSGI application."""

from web.wsgi import HealthReport, WsgiApp, wsgi_application

__all__ = ["HealthReport", "WsgiApp", "wsgi_application"]
