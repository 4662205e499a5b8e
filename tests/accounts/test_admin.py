"""API keys in the admin: staff see everyone's (never a key or its hash) and revoke them."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import api_keys
from accounts.models import ApiKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:accounts_apikey_changelist")


def test_staff_see_every_users_keys_by_prefix_never_the_key_or_its_hash(admin_client):
    ada, key = api_keys.create_key(UserFactory(email="ada@example.com"), name="render farm")
    api_keys.create_key(UserFactory(), name="ci", mode="test")

    listing = admin_client.get(CHANGELIST)
    page = admin_client.get(reverse("admin:accounts_apikey_change", args=[ada.pk]))

    assert listing.status_code == page.status_code == 200
    assert {k.name for k in listing.context["cl"].result_list} == {"render farm", "ci"}
    for html in (listing.content.decode(), page.content.decode()):
        assert ada.prefix in html
        assert key[len(ada.prefix) :] not in html and ada.key_hash not in html


def test_staff_revoke_keys_and_they_are_refused_at_once(admin_client):
    first, first_key = api_keys.create_key(UserFactory(), name="one")
    second, _ = api_keys.create_key(UserFactory(), name="two")
    kept, kept_key = api_keys.create_key(UserFactory(), name="kept")

    response = admin_client.post(
        CHANGELIST, {"action": "revoke_keys", "_selected_action": [first.pk, second.pk]}
    )

    assert response.status_code == 302
    assert set(ApiKey.objects.filter(revoked_at__isnull=True)) == {kept}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first_key}")
    assert client.get("/api/3d/me").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {kept_key}")
    assert client.get("/api/3d/me").status_code == 200


def test_keys_are_neither_added_nor_deleted_in_the_admin(admin_client):
    made, _ = api_keys.create_key(UserFactory(), name="one")

    assert admin_client.get(reverse("admin:accounts_apikey_add")).status_code == 403
    assert (
        admin_client.get(reverse("admin:accounts_apikey_delete", args=[made.pk])).status_code == 403
    )
