"""The web service never imports torch, now that it converts downloads (trimesh, usd-core)."""

import subprocess
import sys

from tests.helpers.processes import ROOT


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
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "DJANGO_SETTINGS_MODULE": "hydrilla.settings",
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "sqlite:///:memory:",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
