"""Request body parsers: DRF's, with every malformed body a 400."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """JSON nested deeper than Python's decoder can follow (``[[[[…`` ten thousand deep) raises
    RecursionError, which DRF does not expect: it is malformed input like any other."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None
