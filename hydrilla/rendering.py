"""Response bodies rendered fast: ``Output``, a DRF serializer that renders each response and
is the OpenAPI schema's description of it (``extend_schema(responses=...)``).

``Output.render(instance, **context)`` renders a body; its fields read what the body needs besides
the instance (the request's site, say) from ``context()``.
"""

from contextvars import ContextVar
from functools import cached_property

from rest_framework import serializers

_rendering: ContextVar[dict] = ContextVar("rendering")


def context() -> dict:
    """What the body being rendered needs besides its instance (see Output.render)."""
    return _rendering.get()


class Output(serializers.Serializer):
    # An output serializer, rendered fast.
    #
    # ``.data`` deep-copies and binds every field again for each instance: 12 to 17 times the cost
    # of building the dict by hand, on the bodies of /status and /api/3d/status that every client
    # polls every 2 s. ``render`` binds the fields once per class and hands them the context through
    # a context variable (per thread and per coroutine), so the bound fields keep no state of a
    # request and serve every one; ``to_representation`` walks a list made once of what each field
    # reads and writes. (Output serializers have comments, not docstrings: the schema would
    # publish those.)

    @cached_property
    def _plan(self) -> list:
        return [
            (field.field_name, _reader(field), field.to_representation)
            for field in self._readable_fields
        ]

    def to_representation(self, instance) -> dict:
        body = {}
        for name, read, represent in self._plan:
            try:
                value = read(instance)
            except serializers.SkipField:
                continue
            body[name] = None if value is None else represent(value)
        return body

    @classmethod
    def render(cls, instance, **rendering) -> dict:
        token = _rendering.set(rendering)
        try:
            return cls._bound().to_representation(instance)
        finally:
            _rendering.reset(token)

    @classmethod
    def _bound(cls) -> "Output":
        bound = cls.__dict__.get("_bound_once")
        if bound is None:
            bound = cls()
            _bind_all(bound)
            cls._bound_once = bound  # a race only makes two equal ones
        return bound


def _reader(field):
    """``field.get_attribute``, without its generality where a field reads one plain attribute or
    key (DRF's own reading serves whatever else: a callable, a missing attribute)."""
    if (
        type(field).get_attribute is not serializers.Field.get_attribute
        or len(field.source_attrs) != 1
    ):
        return field.get_attribute
    name = field.source_attrs[0]

    def read(instance):
        try:
            value = instance[name] if type(instance) is dict else getattr(instance, name)
        except (KeyError, AttributeError):
            return field.get_attribute(instance)
        return field.get_attribute(instance) if callable(value) else value

    return read


def _bind_all(serializer) -> None:
    """Bind nested serializers' fields now, not in a request (``fields`` binds when first read)."""
    for field in serializer.fields.values():
        nested = getattr(field, "child", field)
        if isinstance(nested, serializers.Serializer):
            _bind_all(nested)
