"""Binary FBX with its texture, written by Blender's own exporter (bpy, Blender as a module).

Blender keeps one global scene per process and takes a second to import, so each conversion runs
in a child Python process (``python -m jobs.fbx IN OUT``): the web and worker processes never
import bpy, and conversions never share a scene. Blender reads the GLB (or the quad OBJ, whose
quads it keeps), writes the texture next to its input, and embeds it in the FBX.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

TIMEOUT_SECONDS = 120


class FbxFailed(Exception):
    """Blender could not convert the model."""


def write_fbx(model: bytes, suffix: str) -> bytes:
    """``model`` (a ``.glb``, or a ``.zip`` holding the quad OBJ, by ``suffix``) as binary FBX."""
    with tempfile.TemporaryDirectory(prefix="fbx-") as folder:
        source, target = Path(folder) / f"model{suffix}", Path(folder) / "out" / "model.fbx"
        source.write_bytes(model)
        target.parent.mkdir()
        try:
            run = subprocess.run(
                [sys.executable, "-m", "jobs.fbx", str(source), str(target)],
                capture_output=True,
                timeout=TIMEOUT_SECONDS,
                cwd=Path(__file__).resolve().parent.parent,
            )
        except subprocess.TimeoutExpired as exc:
            raise FbxFailed(f"Blender took over {TIMEOUT_SECONDS} s") from exc
        if run.returncode != 0 or not target.exists():
            tail = run.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise FbxFailed(f"Blender could not write the FBX: {' '.join(tail)}")
        return target.read_bytes()


def _convert_in_blender(source: Path, target: Path) -> None:
    import zipfile

    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    if source.suffix == ".zip":
        with zipfile.ZipFile(source) as archive:
            archive.extractall(source.parent / "obj")
        (obj,) = (source.parent / "obj").glob("*.obj")
        bpy.ops.wm.obj_import(filepath=str(obj))
    else:
        bpy.ops.import_scene.gltf(filepath=str(source))
    # The exporter embeds textures from files: images held in memory (the GLB's) are saved first.
    for number, image in enumerate(bpy.data.images):
        if not image.filepath or not Path(bpy.path.abspath(image.filepath)).exists():
            image.filepath_raw = str(source.parent / f"texture{number}.png")
            image.file_format = "PNG"
            image.save()
    bpy.ops.export_scene.fbx(
        filepath=str(target), path_mode="COPY", embed_textures=True, object_types={"MESH"}
    )


if __name__ == "__main__":
    _convert_in_blender(Path(sys.argv[1]), Path(sys.argv[2]))
