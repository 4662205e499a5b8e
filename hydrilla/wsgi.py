import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from whitenoise import WhiteNoise

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")
# The admin's CSS and scripts, served in front of Django (no separate web server to configure).
application = WhiteNoise(
    get_wsgi_application(), root=settings.STATIC_ROOT, prefix=settings.STATIC_URL
)
