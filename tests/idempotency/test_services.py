"""Idempotency keys: the first request with a key is handled, a retry gets its answer, and of any
number of racing duplicates exactly one is handled."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from hydrilla.queues import DELETE_EXPIRED_IDEMPOTENCY_KEYS, CeleryQueue
from idempotency import services, tasks
from idempotency.models import IdempotentRequest
from idempotency.services import Answer, KeyReused, StillInFlight

CALLER, KEY = "user:user_ada", "3b1f9c2e-retry-me"
ASKED = services.fingerprint("POST", "/api/3d/generate", {"prompt": "a mug"})
CREATED = {"jobId": "0b6f3c1e-1111-4aaa-8bbb-222233334444"}


@pytest.fixture
def short_waits(settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.3


def answered(status=200, body=CREATED, key=KEY, caller=CALLER, asked=ASKED):
    claimed = services.begin(caller, key, asked)
    services.finish(claimed, status, body)
    return claimed


def age(**delta):
    """Every row as if written ``delta`` ago."""
    then = timezone.now() - timedelta(**delta)
    IdempotentRequest.objects.update(created_at=then, started_at=then)


@pytest.mark.django_db
class TestOneCaller:
    def test_the_first_request_is_handled_and_a_retry_gets_its_answer(self):
        claimed = services.begin(CALLER, KEY, ASKED)
        assert isinstance(claimed, IdempotentRequest)
        services.finish(claimed, 201, CREATED)

        assert services.begin(CALLER, KEY, ASKED) == Answer(201, CREATED)
        assert services.begin(CALLER, KEY, ASKED) == Answer(201, CREATED)
        assert IdempotentRequest.objects.count() == 1

    def test_the_same_key_with_another_body_path_or_method_is_refused(self):
        answered()

        for other in (
            services.fingerprint("POST", "/api/3d/generate", {"prompt": "a cup"}),
            services.fingerprint("POST", "/text-to-3d", {"prompt": "a mug"}),
            services.fingerprint("PUT", "/api/3d/generate", {"prompt": "a mug"}),
        ):
            with pytest.raises(KeyReused):
                services.begin(CALLER, KEY, other)
        assert services.begin(CALLER, KEY, ASKED) == Answer(200, CREATED)

    def test_another_body_is_refused_while_the_first_is_in_flight_too(self):
        services.begin(CALLER, KEY, ASKED)

        with pytest.raises(KeyReused):
            services.begin(CALLER, KEY, services.fingerprint("POST", "/x", {}))

    def test_keys_are_per_caller(self):
        answered()

        assert isinstance(services.begin("user:user_bob", KEY, ASKED), IdempotentRequest)
        assert isinstance(services.begin("ip:203.0.113.9", KEY, ASKED), IdempotentRequest)

    def test_a_released_key_is_handled_anew(self):
        services.release(services.begin(CALLER, KEY, ASKED))

        again = services.begin(CALLER, KEY, ASKED)
        assert isinstance(again, IdempotentRequest)
        services.finish(again, 200, CREATED)
        assert services.begin(CALLER, KEY, ASKED) == Answer(200, CREATED)

    def test_a_retry_while_the_first_is_in_flight_waits_then_gets_409(self, short_waits):
        services.begin(CALLER, KEY, ASKED)

        with pytest.raises(StillInFlight):
            services.begin(CALLER, KEY, ASKED)
        assert IdempotentRequest.objects.count() == 1

    def test_a_key_past_its_lifetime_is_handled_anew(self, settings):
        answered()
        age(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS + 1)

        claimed = services.begin(CALLER, KEY, services.fingerprint("POST", "/x", {"other": 1}))
        assert isinstance(claimed, IdempotentRequest)
        assert IdempotentRequest.objects.count() == 1

    def test_a_request_whose_process_died_is_taken_over_and_its_late_answer_ignored(
        self, settings, short_waits
    ):
        abandoned = services.begin(CALLER, KEY, ASKED)
        age(seconds=settings.IDEMPOTENCY_ABANDONED_AFTER_SECONDS + 1)

        retry = services.begin(CALLER, KEY, ASKED)
        assert isinstance(retry, IdempotentRequest)
        services.finish(abandoned, 500, {"error": "late"})  # holds the key no more
        services.release(abandoned)
        services.finish(retry, 200, CREATED)

        assert services.begin(CALLER, KEY, ASKED) == Answer(200, CREATED)

    def test_housekeeping_forgets_keys_past_their_lifetime_only(self, settings):
        answered(key="old")
        age(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS + 1)
        answered(key="new")

        tasks.delete_expired_idempotency_keys.apply()

        assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new"]


def test_housekeeping_runs_hourly_on_the_default_queue():
    assert django_settings.CELERY_TASK_ROUTES[DELETE_EXPIRED_IDEMPOTENCY_KEYS] == {
        "queue": CeleryQueue.DEFAULT
    }
    schedule = {
        entry["task"]: entry["schedule"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule[DELETE_EXPIRED_IDEMPOTENCY_KEYS] == 3600.0


def test_a_fingerprint_ignores_key_order_but_not_values_or_files():
    def of(data, files=()):
        return services.fingerprint("POST", "/upload", data, files)

    assert of({"a": 1, "b": [1, 2]}) == of({"b": [1, 2], "a": 1})
    assert of({"a": 1}) != of({"a": "1"})
    assert of({}, [("image", "aa")]) == of({}, [("image", "aa")])
    assert of({}, [("image", "aa")]) != of({}, [("image", "bb")])
    assert of({}) != of({}, [("image", "aa")])


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("3f1c1a9e-9d3b-4a52-9a51-2f4f3b1f0c11", True),
        ("a", True),
        ("x" * 255, True),
        ("", False),
        ("x" * 256, False),
        ("has space", False),
        ("tab\there", False),
        ("ключ", False),
    ],
)
def test_a_key_is_one_to_255_visible_ascii_characters(key, valid):
    assert services.is_valid_key(key) is valid


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_waiting_for_the_first_gets_its_answer_once_given():
    services.begin(CALLER, KEY, ASKED)
    got = []

    def retry():
        try:
            got.append(services.begin(CALLER, KEY, ASKED))
        finally:
            connection.close()

    thread = threading.Thread(target=retry)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive(), "the duplicate waits for the first request's answer"
    services.finish(IdempotentRequest.objects.get(), 200, CREATED)
    thread.join(5)

    assert got == [Answer(200, CREATED)]


RACERS = 50


@pytest.mark.django_db(transaction=True)
def test_of_50_racing_duplicates_exactly_one_is_handled_and_all_get_its_answer():
    """Each racer, on its own connection, does what a submit does with the key: begin, create the
    thing (here a row of its own), finish."""
    start = threading.Barrier(RACERS)
    handled, answers, errors = [], [], []

    def submit(number):
        try:
            start.wait()
            claimed = services.begin(CALLER, KEY, ASKED)
            if isinstance(claimed, IdempotentRequest):
                handled.append(number)
                services.finish(claimed, 200, {"made": number})
                claimed = Answer(200, {"made": number})
            answers.append(claimed)
        except Exception as exc:  # any failure of a racer fails the test below
            errors.append(exc)
        finally:
            connection.close()

    racers = [threading.Thread(target=submit, args=(n,)) for n in range(RACERS)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)

    assert errors == []
    assert len(handled) == 1
    assert answers == [Answer(200, {"made": handled[0]})] * RACERS
    assert IdempotentRequest.objects.count() == 1
