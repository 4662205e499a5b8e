"""The web service never imports torch, now that it converts downloads (trimesh, usd-core)."""

from tests.helpers.processes import fresh_python


def test_the_web_application_and_a_usdz_conversion_import_no_torch():
    script = (
        "import sys, trimesh\n"
        "from django.core.wsgi import get_wsgi_application\n"
        "get_wsgi_application()\n"
        "import hydrilla.urls\n"
        "from jobs import formats\n"
        "glb = trimesh.creation.box().export(file_type='glb')\n"
        "assert formats.convert(glb, 'usdz')[:2] == b'PK'\n"
        "print('torch' in sys.modules)\n"
    )
    last_line = fresh_python(
        script, DJANGO_SETTINGS_MODULE="hydrilla.settings", DATABASE_URL="sqlite:///:memory:"
    )

    assert last_line == "False"
