"""The broker's queues, read from the side: the messages published to them and their jobs."""

import time


class QueueReader:
    def __init__(self, queue):
        self.queue = queue

    def messages(self) -> list:
        """Everything now in the queue, taken off it."""
        taken = []
        while (message := self.queue.get(no_ack=True)) is not None:
            taken.append(message)
        return taken

    def wait(self, count=1, timeout=2.0) -> list:
        """At least ``count`` messages taken off the queue, or what came within ``timeout``."""
        messages, deadline = [], time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            messages += self.messages()
            if len(messages) < count:
                time.sleep(0.02)
        return messages


def job_ids(messages) -> list[str]:
    return [message.decode()[0][0] for message in messages]
