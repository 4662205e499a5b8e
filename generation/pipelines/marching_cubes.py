"""The 256-case marching-cubes table, in the numbering of diffusers' Shap-E mesh decoder.

Shap-E checkpoints carry this table in the decoder's buffers (``cases``, ``masks``); the tiny
models fill it in, and the weight-free silhouette backend meshes its own fields with it.
"""

import torch

# Corner c of a cube sits at (x, y, z) = (c & 1, c >> 1 & 1, c >> 2 & 1); the decoder's bitmask has
# bit c set when the field is positive (inside) there.


def _cube_edges() -> list[tuple[int, int]]:
    """The decoder's 12 edges as corner pairs: 0-3 along x, 4-7 along y, 8-11 along z.

    Within each axis group the two other coordinates count up, the first of them fastest
    (see ``_create_flat_edge_indices`` in diffusers' Shap-E renderer).
    """
    edges = []
    for axis in range(3):
        first, second = [a for a in range(3) if a != axis]
        for k in range(4):
            start = (k & 1) << first | (k >> 1) << second
            edges.append((start, start | 1 << axis))
    return edges


def _cube_faces() -> list[list[int]]:
    """Each face's four corners, counter-clockwise seen from outside the cube."""
    faces = []
    for axis in range(3):
        u, v = (axis + 1) % 3, (axis + 2) % 3  # u x v = axis, so this order is CCW seen from +axis
        for side in (0, 1):
            loop = [side << axis | du << u | dv << v for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1))]
            faces.append(loop if side else loop[::-1])
    return faces


_EDGE_INDEX = {frozenset(pair): index for index, pair in enumerate(_cube_edges())}
_FACES = _cube_faces()
_FACES_OF_EDGE = [
    {face for face, loop in enumerate(_FACES) if set(pair) <= set(loop)} for pair in _cube_edges()
]


def marching_cubes_table() -> tuple[torch.Tensor, torch.Tensor]:
    """The 256-case triangle table in MeshDecoder's layout.

    ``cases`` (256, 5, 3) holds up to five triangles of edge indices per case, ``masks`` (256, 5)
    which are used.

    Triangles are wound counter-clockwise seen from outside the surface (negative field).
    """
    cases = torch.zeros(256, 5, 3, dtype=torch.long)
    masks = torch.zeros(256, 5, dtype=torch.bool)
    for bitmask in range(256):
        inside = [bool(bitmask >> corner & 1) for corner in range(8)]
        triangles = [triangle for loop in _surface_loops(inside) for triangle in _fan(loop)]
        assert len(triangles) <= 5, f"case {bitmask} needs {len(triangles)} triangles"
        for slot, triangle in enumerate(triangles):
            cases[bitmask, slot] = torch.tensor(triangle)
            masks[bitmask, slot] = True
    return cases, masks


def _surface_loops(inside: list[bool]) -> list[list[int]]:
    """Where the surface crosses the cube's faces, as closed loops of edge indices.

    On every face one segment cuts off each run of inside corners, so a face with two diagonal
    inside corners keeps them apart; both cubes sharing the face make the same choice, which makes
    the surface watertight. Walking the faces counter-clockwise orients every loop the same way.
    """
    next_edge = {}
    for loop in _FACES:
        for i in range(4):
            if inside[loop[i]] and not inside[loop[i - 1]]:  # a run of inside corners starts here
                j = i
                while inside[loop[(j + 1) % 4]]:
                    j += 1
                entry = _EDGE_INDEX[frozenset((loop[i - 1], loop[i]))]
                next_edge[entry] = _EDGE_INDEX[frozenset((loop[j % 4], loop[(j + 1) % 4]))]
    loops = []
    while next_edge:
        start, current = next_edge.popitem()
        loop = [start]
        while current != start:
            loop.append(current)
            current = next_edge.pop(current)
        loops.append(loop)
    return loops


def _fan(loop: list[int]) -> list[tuple[int, int, int]]:
    """Fan-triangulate a loop from an apex whose diagonals stay off the cube's faces.

    A diagonal joining two edges of one face would lie in that face, where the neighbouring cube
    could draw it too, giving an edge shared by four triangles.
    """
    n = len(loop)
    for shift in range(n):
        rotated = loop[shift:] + loop[:shift]
        if not any(
            _FACES_OF_EDGE[rotated[0]] & _FACES_OF_EDGE[rotated[k]] for k in range(2, n - 1)
        ):
            return [(rotated[0], rotated[k], rotated[k + 1]) for k in range(1, n - 1)]
    raise AssertionError(f"no clean fan for loop {loop}")
