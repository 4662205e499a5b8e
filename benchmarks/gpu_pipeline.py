"""Time every step of a generation job through Hydrilla's pipelines, and the same work through the
bare library calls, on one device in one run; print per-step times, our overhead and peak GPU
memory.

    .venv/bin/python benchmarks/gpu_pipeline.py [--tiny | --real-size] [--backend shap-e ...]
        [--repeats N] [--json out.json] [--dtype fp16|bf16|fp32] [--compile] [--channels-last]
        [--sdpa flash|efficient|cudnn|math] [--preview-batch N]
        [--option ROLE.NAME=VALUE ...] [--storage tmp|django] [--models-dir DIR]

Weights are random, never trained (none can be downloaded): ``--real-size`` builds the published
architectures (see ``real_size.py``), ``--tiny`` (the default without CUDA) the tiny test models.
A job here is a text-to-3D job: text to image, cut-out, image to 3D, post-processing, GLB export and
upload of its three files. The 3D steps start from a drawn object, because a random text-to-image
model paints no object to cut out. The bare job is the libraries alone: the diffusers text-to-image
call, the backend's plain call (Shap-E: latents, then ``decode_to_mesh``), ``trimesh`` export and
storing the GLB. Models are loaded once, before the jobs (load times are reported on their own), and
a warm-up job runs before the timed ones.
"""

import argparse
import contextlib
import io
import json
import math
import operator
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Run as a script, Python puts benchmarks/ on the path, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import PIL.Image
import PIL.ImageDraw
import torch
import trimesh

from generation.pipelines import (
    BACKENDS,
    DEFAULT_FACE_COUNT,
    TextToImagePipeline,
    job_steps,
    load_backend,
    select_device,
    select_dtype,
)
from generation.pipelines.image_to_3d.shap_e import mesh_from_decoder
from generation.tiny_models import FOLDERS as TINY_FOLDERS
from jobs import plan
from jobs.plan import JobKind, Step

# A text-to-3D job's steps in the order of its plan, less the storage work between its stages
# (input, handoff): this run has no stages.
STEPS = tuple(
    dict.fromkeys(
        share.step
        for stage in plan.stages(JobKind.TEXT_TO_3D)
        for share in plan.steps(JobKind.TEXT_TO_3D, stage)
        if share.step not in (Step.INPUT, Step.HANDOFF)
    )
)
TARGET_RATIO = 1.10  # end-to-end time over the bare libraries' time
TARGET_SHAP_E_JOB_SECONDS = 3.0  # a Shap-E 3D job from RUN to DONE
TARGET_PREVIEW_SECONDS = 0.3  # a preview request until its image is stored
PROMPT = "a red toy car"
SEED = 7

# Small enough for a CPU to run the whole benchmark in seconds.
TINY_OPTIONS = {
    "text-to-image": {"steps": 2, "size": 64},
    "shap-e": {"steps": 2, "grid_size": 32},
    "hunyuan3d": {"steps": 3, "octree_resolution": 32},
    "silhouette": {"grid_size": 32},
}
# The modules that do a model's heavy work, for --compile.
COMPILED = {
    "text-to-image": ("pipe.unet", "pipe.vae.decoder"),
    "shap-e": ("pipe.prior",),
    "hunyuan3d": ("pipe.model", "pipe.vae.geo_decoder"),
}


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    _quiet_libraries()
    device = select_device(args.device)
    dtype = select_dtype(device, args.dtype)
    tiny = device.type != "cuda" if args.tiny is None else args.tiny
    options = _options(args.option, tiny)
    unknown = [name for name in args.backend or () if name not in BACKENDS]
    if unknown:
        raise SystemExit(f"Unknown backend(s) {unknown}; registered: {sorted(BACKENDS)}")

    with tempfile.TemporaryDirectory(prefix="hydrilla-bench-") as scratch:
        models_dir = Path(args.models_dir) if args.models_dir else Path(scratch) / "models"
        backends, notes = _available(args.backend or sorted(BACKENDS))
        started = time.perf_counter()
        folders = _models(models_dir, ["text-to-image", *backends], tiny, device)
        build_seconds = time.perf_counter() - started

        load_seconds, models = {}, {}
        for role in ["text-to-image", *backends]:
            started = _synchronised(device)
            if role == "text-to-image":
                models[role] = TextToImagePipeline.load(
                    str(folders[role]), device, dtype, **options[role]
                )
            else:
                model = str(folders[role]) if folders[role] else None
                models[role] = load_backend(role, model, device, dtype, **options[role])
            load_seconds[role] = _synchronised(device) - started
            _apply_levers(role, models[role], args)

        resident = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
        photo = _object_photo(64 if tiny else 512)
        results = {}
        with (
            _storage(args.storage, Path(scratch) / "storage") as storage,
            _sdpa(args.sdpa),
        ):
            for name in backends:
                results[name] = _benchmark_backend(
                    models["text-to-image"], models[name], name, photo, storage, args.repeats
                )
            preview_batch = (
                _preview_batch(models["text-to-image"], args.preview_batch)
                if args.preview_batch
                else None
            )

    report = {
        "device": _device_name(device),
        "dtype": str(dtype).removeprefix("torch."),
        "weights": "tiny, random" if tiny else "real-size architectures, random",
        "repeats": args.repeats,
        "levers": {
            "compile": args.compile_mode if args.compile else None,
            "channels_last": args.channels_last,
            "sdpa": args.sdpa,
            "storage": args.storage,
        },
        "build_seconds": build_seconds,
        "load_seconds": load_seconds,
        "resident_gpu_mib": resident,
        "backends": results,
        "preview_batch": preview_batch,
        "notes": notes,
    }
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--tiny", action="store_true", default=None, help="tiny models (default without CUDA)"
    )
    size.add_argument(
        "--real-size",
        dest="tiny",
        action="store_false",
        help="real-size architectures (default on CUDA)",
    )
    parser.add_argument(
        "--backend", action="append", help="image-to-3D backend (repeatable; default: all)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed jobs per backend, after one warm-up"
    )
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: CUDA when present)")
    parser.add_argument(
        "--dtype", help="fp16 (default on CUDA), bf16 or fp32; always fp32 on the CPU"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the denoisers and decoders"
    )
    parser.add_argument(
        "--compile-mode", default="default", help="torch.compile mode (max-autotune, ...)"
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="channels-last memory for the UNet and VAE"
    )
    parser.add_argument(
        "--sdpa",
        choices=("auto", "flash", "efficient", "cudnn", "math"),
        default="auto",
        help="attention kernel",
    )
    parser.add_argument(
        "--preview-batch", type=int, default=0, help="also time N previews in one batch"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="ROLE.NAME=VALUE",
        help="a model option, e.g. shap-e.grid_size=64 or text-to-image.steps=2 (repeatable)",
    )
    parser.add_argument(
        "--storage",
        choices=("tmp", "django"),
        default="tmp",
        help="tmp: files in a temporary folder; django: the configured storage (S3 or MEDIA_ROOT)",
    )
    parser.add_argument(
        "--models-dir", help="keep the built models here and reuse them on later runs"
    )
    return parser


def _options(overrides: list[str], tiny: bool) -> dict[str, dict]:
    options = {role: dict(TINY_OPTIONS[role]) if tiny else {} for role in TINY_OPTIONS}
    for override in overrides:
        key, _, value = override.partition("=")
        role, _, name = key.rpartition(".")
        if not (role and name and value):
            raise SystemExit(f"--option {override!r}: expected ROLE.NAME=VALUE")
        try:
            value = json.loads(value)
        except ValueError:
            pass  # a word, such as a subfolder's name
        options.setdefault(role, {})[name] = value
    return options


def _quiet_libraries() -> None:
    """No progress bars or import-time advice in the middle of the table."""
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _available(names: list[str]) -> tuple[list[str], list[str]]:
    """The backends that can run here, and a note for each that cannot."""
    available, notes = [], []
    for name in names:
        if name not in TINY_FOLDERS:
            notes.append(
                f"{name} skipped: the benchmark knows no model "
                f"for it (TINY_FOLDERS, real_size.BUILDERS)"
            )
        elif name == "hunyuan3d" and not _hy3dgen_importable():
            notes.append(
                "hunyuan3d skipped: hy3dgen does not import here (see requirements/hunyuan3d.txt)"
            )
        else:
            available.append(name)
    return available, notes


def _hy3dgen_importable() -> bool:
    from generation.pipelines.image_to_3d.hunyuan3d import hy3dgen_importable

    return hy3dgen_importable()


def _models(
    directory: Path, roles: list[str], tiny: bool, device: torch.device
) -> dict[str, Path | None]:
    """Each role's model folder (None for weight-free backends), built unless ``directory`` has
    it."""
    from benchmarks.real_size import BUILDERS
    from generation.tiny_models import ensure_tiny_models

    if tiny:  # one build makes every tiny model
        folder = ensure_tiny_models(directory / "tiny")
        return {role: folder / TINY_FOLDERS[role] if TINY_FOLDERS[role] else None for role in roles}
    folders = {}
    for role in roles:
        if TINY_FOLDERS[role] is None:
            folders[role] = None
            continue
        name, build = BUILDERS[role]
        folders[role] = directory / "real-size" / name
        _build_once(folders[role], lambda target, build=build: build(target, device))
    return folders


def _build_once(folder: Path, build) -> None:
    """``build(folder)`` unless a finished real-size build is there; one that died halfway is
    redone."""
    marker = folder.with_name(folder.name + ".complete")
    if marker.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    build(folder)
    marker.touch()


def _apply_levers(role: str, model, args) -> None:
    if args.channels_last and role == "text-to-image":
        model.pipe.unet.to(memory_format=torch.channels_last)
        model.pipe.vae.to(memory_format=torch.channels_last)
    if args.compile:
        for path in COMPILED.get(role, ()):
            module = operator.attrgetter(path)(model)
            # Compile forward, not the module: the step reporting hooks then stay outside the graph,
            # and a new hook per job does not trigger a recompilation.
            module.forward = torch.compile(module.forward, mode=args.compile_mode)


def _sdpa(choice: str):
    if choice == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "math": SDPBackend.MATH,
    }[choice]
    return sdpa_kernel(backend)


def _benchmark_backend(text_to_image, backend, name: str, photo, storage, repeats: int) -> dict:
    bare = BARE_IMAGE_TO_3D.get(name)
    # Ours and bare each in a block after a warm-up job of its own: the bare calls differ from ours
    # (Shap-E's latents then decode_to_mesh, say), so each has first calls and compilations to pay.
    first_job = _our_job(
        text_to_image, backend, photo, storage
    )  # warm-up: first calls, compilation
    runs = {
        "ours": [_our_job(text_to_image, backend, photo, storage) for _ in range(repeats)],
        "bare": [],
    }
    if bare:
        _bare_job(text_to_image, backend, bare, photo, storage)
        runs["bare"] = [
            _bare_job(text_to_image, backend, bare, photo, storage) for _ in range(repeats)
        ]

    steps = {}
    for step in STEPS:
        ours = _median(runs["ours"], step)
        theirs = _median(runs["bare"], step) if bare else None
        steps[step] = {
            "ours": ours,
            "bare": theirs,
            "ratio": ours / theirs if theirs else None,
            "peak_gpu_mib": {kind: _peak(runs[kind], step) for kind in runs},
        }
    ours_total = sum(row["ours"] for row in steps.values())
    bare_total = sum(row["bare"] or 0 for row in steps.values()) if bare else None
    preview = steps[Step.TEXT_TO_IMAGE]["ours"] + _median(runs["ours"], "preview_upload")
    job_3d = ours_total - preview
    return {
        "steps": steps,
        "total": {
            "ours": ours_total,
            "bare": bare_total,
            "ratio": ours_total / bare_total if bare else None,
        },
        "first_job_seconds": sum(first_job["seconds"][step] for step in STEPS),
        "preview_seconds": preview,
        "job_3d_seconds": job_3d,
        "faces": runs["ours"][-1]["faces"],
        "targets": _targets(name, ours_total / bare_total if bare else None, job_3d, preview),
    }


def _targets(name: str, ratio: float | None, job_3d: float, preview: float) -> list[dict]:
    targets = [
        {
            "target": f"end-to-end / bare <= {TARGET_RATIO}",
            "value": ratio,
            "met": None if ratio is None else ratio <= TARGET_RATIO,
        },
        {
            "target": f"preview to stored image <= {TARGET_PREVIEW_SECONDS} s",
            "value": preview,
            "met": preview <= TARGET_PREVIEW_SECONDS,
        },
    ]
    if name == "shap-e":
        targets.append(
            {
                "target": f"Shap-E 3D job RUN to DONE <= {TARGET_SHAP_E_JOB_SECONDS} s",
                "value": job_3d,
                "met": job_3d <= TARGET_SHAP_E_JOB_SECONDS,
            }
        )
    return targets


class _Clock:
    """Seconds and peak GPU memory of each step of one job; GPU work is waited for at both ends.
    Ours is timed as the runner reports it (``job_steps.StepReporter``: ``step`` ends the running
    step and starts the next), the bare job by ``with clock.timed(name)``."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds, self.peak_bytes = {}, {}
        self._running: tuple[str, float] | None = None

    @contextlib.contextmanager
    def timed(self, name: str):
        self._start(name)
        yield
        self.stop()

    def step(self, name: str) -> None:
        self.stop()
        self._start(name)

    def on_denoising_step(self, done: int, total: int) -> None:
        pass  # the runner's reporter writes progress to the database here: no database in this run

    def stop(self) -> None:
        if self._running is None:
            return
        name, started = self._running
        self.seconds[name] = self.seconds.get(name, 0.0) + _synchronised(self.device) - started
        if self.device.type == "cuda":
            self.peak_bytes[name] = max(
                self.peak_bytes.get(name, 0), torch.cuda.max_memory_allocated(self.device)
            )
        self._running = None

    def _start(self, name: str) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._running = (name, _synchronised(self.device))


def _our_job(text_to_image, backend, photo, storage) -> dict:
    """A text-to-3D job through the stages' own work (``generation.pipelines.job_steps``, which the
    worker's runner calls), less its database writes and the handoffs between stages."""
    clock = _Clock(text_to_image.device)
    preview = job_steps.prompt_image(text_to_image, PROMPT, SEED, clock)
    clock.step("preview_upload")
    storage.save("preview.png", job_steps.png(preview))
    # From a drawn object: a random text-to-image model paints nothing to cut out.
    cutout = job_steps.object_cut_out(photo, clock)
    mesh = job_steps.raw_mesh(backend, cutout, SEED, clock)
    _source, glb = job_steps.finished_model(
        mesh, cutout, job_steps.Finish(face_count=DEFAULT_FACE_COUNT), clock
    )
    clock.step(Step.UPLOAD)
    storage.save("processed.png", job_steps.png(cutout))
    storage.save("model.glb", glb)
    clock.stop()
    clock.seconds[Step.UPLOAD] += clock.seconds["preview_upload"]
    faces = len(trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh").faces)
    return {"seconds": clock.seconds, "peak_bytes": clock.peak_bytes, "faces": faces}


def _bare_job(text_to_image, backend, bare_image_to_3d, photo, storage) -> dict:
    """The libraries alone: no prompt suffix, cut-out, progress, memory release or mesh
    finishing."""
    clock = _Clock(text_to_image.device)
    sampling = text_to_image.sampling
    with clock.timed(Step.TEXT_TO_IMAGE):
        text_to_image.pipe(
            prompt=PROMPT,
            num_inference_steps=sampling.steps,
            guidance_scale=sampling.guidance_scale,
            width=sampling.size,
            height=sampling.size,
            generator=torch.Generator(device=text_to_image.device).manual_seed(SEED),
        )
    with clock.timed(Step.IMAGE_TO_3D):
        mesh = bare_image_to_3d(backend, photo)
    with clock.timed(Step.EXPORT):
        glb = mesh.export(file_type="glb")
    with clock.timed(Step.UPLOAD):
        storage.save("model.glb", glb)
    return {"seconds": clock.seconds, "peak_bytes": clock.peak_bytes}


def _bare_shap_e(backend, photo) -> trimesh.Trimesh:
    pipe = backend.pipe
    latents = pipe(
        photo,
        num_inference_steps=backend.steps,
        guidance_scale=backend.guidance_scale,
        generator=torch.Generator(device=backend.device).manual_seed(SEED),
        output_type="latent",
    ).images
    decoded = pipe.shap_e_renderer.decode_to_mesh(
        latents[0][None], backend.device, grid_size=backend.grid_size
    )
    return mesh_from_decoder(decoded)  # the same conversion as ours: trimesh needs one either way


def _bare_hunyuan3d(backend, photo) -> trimesh.Trimesh:
    return backend.pipe(
        image=photo,
        num_inference_steps=backend.steps,
        guidance_scale=backend.guidance_scale,
        octree_resolution=backend.octree_resolution,
        num_chunks=backend.num_chunks,
        generator=torch.Generator(device=backend.device).manual_seed(SEED),
        output_type="trimesh",
        enable_pbar=False,
    )[0]


# Backends with no library call of their own (silhouette is our code) have no bare counterpart.
BARE_IMAGE_TO_3D = {"shap-e": _bare_shap_e, "hunyuan3d": _bare_hunyuan3d}


def _preview_batch(text_to_image, size: int) -> dict:
    """N previews in one pipeline call against N calls of one (bare, after a warm-up of each)."""
    sampling, device = text_to_image.sampling, text_to_image.device

    def run(prompts: int):
        return text_to_image.pipe(
            prompt=[PROMPT] * prompts,
            num_inference_steps=sampling.steps,
            guidance_scale=sampling.guidance_scale,
            width=sampling.size,
            height=sampling.size,
            generator=torch.Generator(device=device).manual_seed(SEED),
        )

    run(size)
    run(1)
    started = _synchronised(device)
    run(size)
    batched = _synchronised(device) - started
    started = _synchronised(device)
    for _ in range(size):
        run(1)
    one_by_one = _synchronised(device) - started
    return {
        "previews": size,
        "batched_seconds": batched,
        "one_by_one_seconds": one_by_one,
        "batched_per_preview": batched / size,
        "one_by_one_per_preview": one_by_one / size,
    }


class _TempStorage:
    """Files written to a local folder (removed with it): the filesystem cost of an upload, without
    Django."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True)

    def save(self, filename: str, data: bytes) -> None:
        (self.folder / f"{uuid.uuid4().hex[:12]}-{filename}").write_bytes(data)

    def close(self) -> None:
        pass


class _DjangoStorage:
    """The configured storage (S3 or MEDIA_ROOT) through jobs.storage, as the worker uploads."""

    def __init__(self):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")
        import django

        django.setup()
        from jobs import storage

        self.storage, self.names = storage, []

    def save(self, filename: str, data: bytes) -> None:
        self.names.append(self.storage.save("benchmark", filename, data))

    def close(self) -> None:
        self.storage.delete(*self.names)


def _storage(kind: str, folder: Path):
    return contextlib.closing(_DjangoStorage() if kind == "django" else _TempStorage(folder))


def _object_photo(side: int) -> PIL.Image.Image:
    """A red disc on a plain background, as a text-to-image model paints an object."""
    photo = PIL.Image.new("RGB", (side, side), (245, 245, 245))
    PIL.ImageDraw.Draw(photo).ellipse(
        (side // 5, side // 4, 4 * side // 5, 3 * side // 4), fill=(200, 30, 30)
    )
    return photo


def _synchronised(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _median(runs: list[dict], step: str) -> float | None:
    values = [run["seconds"][step] for run in runs if step in run["seconds"]]
    return statistics.median(values) if values else None


def _peak(runs: list[dict], step: str) -> float | None:
    values = [run["peak_bytes"][step] for run in runs if run["peak_bytes"].get(step) is not None]
    return max(values) / 2**20 if values else None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} (no CUDA: peak GPU memory n/a)"


def _print(report: dict) -> None:
    levers = ", ".join(f"{name} {value}" for name, value in report["levers"].items())
    print(
        f"Device {report['device']}, {report['dtype']}, weights {report['weights']}, "
        f"median of {report['repeats']} job(s) after one warm-up; {levers}"
    )
    loads = ", ".join(f"{role} {seconds:.2f} s" for role, seconds in report["load_seconds"].items())
    print(
        f"Models loaded once per process, before any job: "
        f"{loads} (built in {report['build_seconds']:.1f} s)"
    )
    for name, result in report["backends"].items():
        print(
            f"\n{name:<16}{'ours s':>10}{'bare s':>10}{'ours/bare':>11}"
            f"{'peak GPU MiB ours/bare':>26}"
        )
        for step, row in result["steps"].items():
            peaks = "/".join(
                _number(row["peak_gpu_mib"].get(kind), "{:.0f}") for kind in ("ours", "bare")
            )
            print(
                f"{step:<16}{_number(row['ours'], '{:.3f}'):>10}"
                f"{_number(row['bare'], '{:.3f}'):>10}"
                f"{_number(row['ratio'], '{:.2f}'):>11}{peaks:>26}"
            )
        total = result["total"]
        print(
            f"{'total':<16}{_number(total['ours'], '{:.3f}'):>10}"
            f"{_number(total['bare'], '{:.3f}'):>10}"
            f"{_number(total['ratio'], '{:.2f}'):>11}"
        )
        print(
            f"first job (warm-up) {result['first_job_seconds']:.3f} s; later jobs load nothing; "
            f"GLB of {result['faces']} faces"
        )
        for target in result["targets"]:
            verdict = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
            print(f"  target {target['target']}: {_number(target['value'], '{:.3f}')} {verdict}")
    print(
        "\nPreview and 3D-job times are model, image and "
        "storage work only: no HTTP, queue or database."
    )
    if report["preview_batch"]:
        batch = report["preview_batch"]
        print(
            f"{batch['previews']} previews: batched {batch['batched_per_preview']:.3f} s each, "
            f"one by one {batch['one_by_one_per_preview']:.3f} s each"
        )
    for note in report["notes"]:
        print(f"note: {note}")


def _number(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return pattern.format(value)


if __name__ == "__main__":
    main()
