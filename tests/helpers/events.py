"""Server-Sent Events as a client reads them: a streamed response's chunks, and their events."""

import asyncio
import json


def chunks_of(response):
    """A test client's streamed response, chunk by chunk as it is produced: the stream is a
    coroutine's, stepped here on an event loop of its own (closing it ends the stream)."""
    stream = response.streaming_content
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(stream))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(stream.aclose())
        loop.close()


def sse_events(chunks):
    """(event name, JSON body) pairs from an event stream, as they arrive; comment lines are
    yielded as ("comment", text)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            name, data = "message", []
            for line in block.split("\n"):
                if line.startswith(":"):
                    yield "comment", line[1:].strip()
                elif line.startswith("event:"):
                    name = line[len("event:") :].strip()
                elif line.startswith("data:"):
                    data.append(line[len("data:") :].strip())
            if data:
                yield name, json.loads("\n".join(data))
    assert not buffer.strip(), f"the stream ended inside an event: {buffer!r}"
