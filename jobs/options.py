"""The words of a job's options as requests name them (``generateType``, ``polygonType``).

Django-free, so that the models' choices, the API's enums and the pipelines that act on the options
(``generation.pipelines.mesh``) read the same words.
"""

from enum import StrEnum


class GenerateType(StrEnum):
    NORMAL = "Normal"
    LOW_POLY = "LowPoly"
    GEOMETRY = "Geometry"
    SKETCH = "Sketch"


class PolygonType(StrEnum):
    TRIANGLE = "triangle"
    QUADRILATERAL = "quadrilateral"
