"""Time the CPU work that finishes a 3D job, step by step, on one core: the new path against
today's (the UV atlas of xatlas and the code of commit ``TODAY``) in the same run.

    .venv/bin/python benchmarks/finishing.py [--backend silhouette ...] [--faces 40000 ...]
        [--repeats 3] [--today-repeats 1] [--json out.json]

For each backend's mesh and face count it runs the worker's ``finish`` stage (read the raw mesh,
clean it up and paint it, decimate, UV atlas, bake, GLB export and read-back, save the kept mesh)
and a remesh of the kept mesh, and reports the CPU seconds of each step, the median of
``--repeats`` runs, and today's/new ratios. Storage reads and writes are not included.

Meshes, made here with no weights to download:

- ``silhouette``: the silhouette backend on the demo's mug photo (``scripts/demo.py``);
- ``shap-e``: the tiny random Shap-E model's mesh, a box with the random colour heads' colours
  (what ``benchmarks/real_size.py``'s real-size Shap-E gives too, at the same grid);
- ``hunyuan3d``: a Hunyuan3D-2-like mesh, uncoloured, a ball (what the real-size Hunyuan3D-2 of
  ``real_size.py`` gives), painted from its photo as hunyuan3d jobs are. hy3dgen, which the tiny
  Hunyuan3D-2 model needs, is not installed on CPU machines, so the ball is the silhouette backend's
  mesh of a drawn disc with its colours dropped.

Raw meshes come from a grid of ``RAW_GRID`` cells (each backend's default, 128, gives the demo's
116,644-face mug); 200,000 faces start from a finer grid, so that decimation still has work.

Today's path runs the same steps with the texture module of commit ``TODAY`` read from git
(xatlas' atlas, the bounding-box rasteriser, the ring-by-ring colour spread), and the clean-up
twice, once when preparing and once more when finishing, as it did. The clean-up's own steps and
the export are this tree's in both paths (the clean-up's winding check lost trimesh's inertia
tensor, and the GLB the atlas' vertex map, in this round too), so today's figures for those are a
little low. Every native thread pool is held to one thread, so CPU seconds are one core's.
"""

import os

# One core, as one job gets: every native thread pool sized before numpy, scipy, torch and uvunwrap
# start theirs.
for _pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_pool] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from collections import defaultdict  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, Python puts benchmarks/ on the path, not the repository root.
sys.path.insert(0, str(ROOT))

import PIL.Image  # noqa: E402
import PIL.ImageDraw  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402

from generation.pipelines import cut_out, load_backend, mesh, texture  # noqa: E402
from generation.pipelines.mesh import (  # noqa: E402
    CLEAN_UP,
    DEFAULT_TEXTURE_SIZE,
    export_glb,
    finishing_steps,
    load_source_mesh,
    post_processed,
    prepare_mesh,
    save_source_mesh,
)
from generation.tiny_models import FOLDERS, ensure_tiny_models  # noqa: E402
from scripts.demo import draw_sample_photo  # noqa: E402

TODAY = "d38e4fc"  # the last commit whose finishing used xatlas
BACKENDS = ("silhouette", "shap-e", "hunyuan3d")
FACE_COUNTS = (5_000, 40_000, 200_000)
RAW_GRID = {5_000: 128, 40_000: 128, 200_000: 192}
STEPS = (
    "load_raw",
    "clean_up",
    "paint",
    "clean_up_again",
    "decimate",
    "unwrap",
    "bake",
    "material",
    "export",
    "save_source",
)
TARGET_FACES = 40_000
TARGET_FINISH_SECONDS = 1.5  # the finish stage, and a remesh, on one core


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    torch.set_num_threads(1)
    paths = {"new": texture, "today": _todays_texture()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="hydrilla-finishing-") as scratch:
        inputs = _Inputs(Path(scratch))
        for backend in args.backend or BACKENDS:
            for faces in args.faces or FACE_COUNTS:
                raw, photo = inputs.raw(backend, RAW_GRID[faces])
                rows.append(_measure(backend, faces, raw, photo, paths, args))
                _print_row(rows[-1])
    report = {
        "machine": _machine(),
        "threads": 1,
        "texture_size": DEFAULT_TEXTURE_SIZE,
        "repeats": {"new": args.repeats, "today": args.today_repeats},
        "today": f"commit {TODAY}: xatlas {_version('xatlas')}",
        "new": f"uvunwrap {_version('uvunwrap')}",
        "rows": rows,
        "targets": _targets(rows),
    }
    _print_targets(report["targets"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=BACKENDS, help="(repeatable)")
    parser.add_argument("--faces", action="append", type=int, help="face count (repeatable)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the new path per row")
    parser.add_argument(
        "--today-repeats", type=int, default=1, help="runs of today's path per row (slow)"
    )
    parser.add_argument("--json", help="also write the results to this file")
    return parser


class _Inputs:
    """Each backend's raw mesh (binary PLY, as the worker stores it) and the cut-out it came from,
    made once per grid."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.made = {}
        self.mug = cut_out(PIL.Image.open(io.BytesIO(draw_sample_photo())))
        disc = PIL.Image.new("RGB", (512, 512), (236, 236, 232))
        draw = PIL.ImageDraw.Draw(disc)
        draw.ellipse((120, 120, 392, 392), fill=(40, 120, 200))
        draw.ellipse((200, 200, 300, 300), fill=(230, 200, 40))
        self.disc = cut_out(disc)

    def raw(self, backend: str, grid: int) -> tuple[bytes, PIL.Image.Image]:
        if (backend, grid) not in self.made:
            self.made[backend, grid] = self._make(backend, grid)
        return self.made[backend, grid]

    def _make(self, backend: str, grid: int) -> tuple[bytes, PIL.Image.Image]:
        cpu = torch.device("cpu")
        if backend == "shap-e":
            folder = ensure_tiny_models(self.scratch / "tiny") / FOLDERS["shap-e"]
            model = load_backend("shap-e", str(folder), cpu, torch.float32, grid_size=grid)
            return save_source_mesh(model(self.mug, seed=0)), self.mug
        silhouette = load_backend("silhouette", None, cpu, torch.float32, grid_size=grid)
        if backend == "silhouette":
            return save_source_mesh(silhouette(self.mug, seed=0)), self.mug
        ball = silhouette(self.disc, seed=0)
        uncoloured = trimesh.Trimesh(ball.vertices, ball.faces, process=False)
        return save_source_mesh(uncoloured), self.disc


def _todays_texture() -> types.ModuleType:
    """The texture module of commit ``TODAY``, read from git."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{TODAY}:generation/pipelines/texture.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("texture_today")
    exec(compile(source, f"{TODAY}:generation/pipelines/texture.py", "exec"), module.__dict__)
    xatlas_unwrap = module.unwrap

    def unwrap(mesh, texture_size):
        """Today's atlas in today's ``unwrap``, answered as the new one answers."""
        cut, uv = xatlas_unwrap(mesh, texture_size)
        return cut.metadata["source_vertex"], cut.faces, uv

    module.unwrap = unwrap
    return module


class _Stopwatch:
    """CPU seconds per step, from calls wrapped by ``timed``; nested steps are taken out of the
    step around them."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.inner = 0.0

    def timed(self, name: str, function):
        def call(*args, **kwargs):
            outer_inner, self.inner = self.inner, 0.0
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.process_time() - started
                self.seconds[name] += spent - self.inner
                self.inner = outer_inner + spent

        return call


@contextmanager
def _finishing_with(texture_module: types.ModuleType, watch: _Stopwatch):
    """``generation.pipelines.mesh`` calling ``texture_module``'s functions, each timed."""
    timed = types.SimpleNamespace(**vars(texture_module))
    timed.paint_from_photo = watch.timed("paint", texture_module.paint_from_photo)
    timed.unwrap = watch.timed("unwrap", texture_module.unwrap)
    timed.bake = watch.timed("bake", texture_module.bake)
    with mock.patch.object(mesh, "texture", timed):
        yield


def _finish(raw_ply, photo, faces, texture_module, *, today: bool) -> dict[str, float]:
    """The worker's finish stage; the CPU seconds of each step."""
    watch = _Stopwatch()
    with _finishing_with(texture_module, watch):
        raw = watch.timed("load_raw", load_source_mesh)(raw_ply)
        source = watch.timed("clean_up", prepare_mesh)(raw, photo=photo)
        _finished(source, faces, watch, today=today)
        watch.timed("save_source", save_source_mesh)(source)
    return dict(watch.seconds)


def _remesh(source_ply, faces, texture_module, *, today: bool) -> dict[str, float]:
    """A remesh job: the kept mesh finished again."""
    watch = _Stopwatch()
    with _finishing_with(texture_module, watch):
        source = watch.timed("load_raw", load_source_mesh)(source_ply)
        _finished(source, faces, watch, today=today)
    return dict(watch.seconds)


def _finished(source, faces, watch: _Stopwatch, *, today: bool) -> bytes:
    finishing, max_faces = finishing_steps(
        face_count=faces,
        generate_type="Normal",
        enable_pbr=False,
        texture_size=DEFAULT_TEXTURE_SIZE,
    )
    steps = [watch.timed("clean_up_again", step) for step in CLEAN_UP] if today else []
    names = {"FaceReducer": "decimate", "Texturer": "material"}
    steps += [watch.timed(names[type(step).__name__], step) for step in finishing]
    return watch.timed("export", export_glb)(post_processed(source, steps), max_faces)


def _measure(backend, faces, raw_ply, photo, paths, args) -> dict:
    """One row: the finish stage and a remesh, each path's steps and total."""
    source_ply = save_source_mesh(prepare_mesh(load_source_mesh(raw_ply), photo=photo))
    runs = {"new": args.repeats, "today": args.today_repeats}
    finish = {
        path: [_finish(raw_ply, photo, faces, module, today=path == "today") for _ in range(n)]
        for (path, module), n in zip(paths.items(), runs.values(), strict=True)
    }
    remesh = {
        path: [_remesh(source_ply, faces, module, today=path == "today") for _ in range(n)]
        for (path, module), n in zip(paths.items(), runs.values(), strict=True)
    }
    return {
        "backend": backend,
        "faces": faces,
        "raw_faces": len(load_source_mesh(raw_ply).faces),
        "finish": _summary(finish),
        "remesh": _summary(remesh),
    }


def _summary(runs: dict[str, list[dict[str, float]]]) -> dict:
    """Median CPU seconds of each step and of the whole, per path, and today/new."""

    def compared(seconds_of) -> dict:
        new, today = (statistics.median(seconds_of(run) for run in runs[p]) for p in runs)
        return {"new": new, "today": today, "today/new": today / new if new else None}

    steps = {
        step: compared(lambda run, step=step: run.get(step, 0.0))
        for step in STEPS
        if any(step in run for path_runs in runs.values() for run in path_runs)
    }
    return {"steps": steps, "total": compared(lambda run: sum(run.values()))}


def _targets(rows: list[dict]) -> list[dict]:
    targets = []
    for row in rows:
        if row["faces"] != TARGET_FACES:
            continue
        for stage in ("finish", "remesh"):
            seconds = row[stage]["total"]["new"]
            targets.append(
                {
                    "target": f"{row['backend']} {stage} at {TARGET_FACES} faces, one core",
                    "seconds": seconds,
                    "limit": TARGET_FINISH_SECONDS,
                    "met": seconds <= TARGET_FINISH_SECONDS,
                }
            )
    return targets


def _print_row(row: dict) -> None:
    print(f"\n{row['backend']}, {row['faces']} faces (raw {row['raw_faces']}): CPU seconds")
    print(f"  {'step':<16}{'new':>9}{'today':>9}{'today/new':>11}")
    for stage in ("finish", "remesh"):
        lines = [*row[stage]["steps"].items(), (f"{stage} total", row[stage]["total"])]
        for name, figures in lines:
            ratio = figures["today/new"]
            ratio_text = f"{ratio:>11.1f}" if ratio is not None else f"{'-':>11}"
            print(f"  {name:<16}{figures['new']:>9.3f}{figures['today']:>9.3f}{ratio_text}")


def _print_targets(targets: list[dict]) -> None:
    print()
    for target in targets:
        verdict = "met" if target["met"] else "MISSED"
        print(
            f"target {target['target']}: {target['seconds']:.2f} s <= {target['limit']} s {verdict}"
        )


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return f"{cpu}, {os.cpu_count()} cores"


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
