"""Celery tasks of webhooks, on their own queue (hydrilla.queues): thin, the work is in
webhooks.services."""

from celery import shared_task

from hydrilla.queues import DELIVER_WEBHOOK, FORGET_WEBHOOK_EVENTS, SWEEP_WEBHOOKS
from webhooks import services


@shared_task(name=DELIVER_WEBHOOK)
def deliver(message_id: int) -> None:
    services.deliver(message_id)


@shared_task(name=SWEEP_WEBHOOKS)
def sweep() -> None:
    services.publish_due()


@shared_task(name=FORGET_WEBHOOK_EVENTS)
def forget_old_events() -> None:
    services.forget_old_events()
