import os

from django.core.wsgi import get_wsgi_application

from config.boot import load_every_view, refuse_to_serve_without_a_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
refuse_to_serve_without_a_secret_key()
load_every_view()
