"""Request body parsers: DRF's, with every malformed body a 400.

A body that ends before its ``Content-Length`` (the client closed its side early) is refused as a
whole: what arrived may parse, and would be taken for the complete request.
"""

from rest_framework import exceptions, parsers

READ_CHUNK_BYTES = 64 * 1024


class IncompleteBody(exceptions.ParseError):
    default_detail = "Request body shorter than its Content-Length"


class _CountedStream:
    """The request body, counted as it is read; running out before ``expected`` bytes raises."""

    def __init__(self, stream, expected: int):
        self.stream, self.expected, self.seen = stream, expected, 0

    def read(self, size=-1):
        data = self.stream.read(size)
        self.seen += len(data)
        whole = size is None or size < 0
        if self.seen < self.expected and (whole or not data):
            raise IncompleteBody()
        return data

    def read_to_end(self) -> None:
        """Parsers may stop at the data's end (multipart's closing boundary): the rest must come
        too."""
        while self.seen < self.expected:
            self.read(READ_CHUNK_BYTES)


class _CompleteBody:
    def parse(self, stream, media_type=None, parser_context=None):
        counted = _CountedStream(
            stream, int(parser_context["request"].META.get("CONTENT_LENGTH") or 0)
        )
        parsed = super().parse(counted, media_type, parser_context)
        counted.read_to_end()
        return parsed


class JSONParser(_CompleteBody, parsers.JSONParser):
    """JSON nested deeper than Python's decoder can follow (``[[[[…`` ten thousand deep) raises
    RecursionError, which DRF does not expect: it is malformed input like any other."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None


class FormParser(_CompleteBody, parsers.FormParser):
    pass


class MultiPartParser(_CompleteBody, parsers.MultiPartParser):
    pass
