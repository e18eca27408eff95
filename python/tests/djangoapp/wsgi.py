"""WSGI entry point: ``gunicorn djangoapp.wsgi`` (with ``python/tests`` on the path)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoapp.settings")
application = get_wsgi_application()
