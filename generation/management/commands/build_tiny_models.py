from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Build tiny, randomly-initialised versions of the configured pipelines with the real "
        "diffusers/transformers classes (save_pretrained), so the real loading and running code "
        "runs with no hub and no weights. Workers do this by themselves when no weights are set."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", default=str(settings.TINY_MODELS_DIR))

    def handle(self, *args, directory, **options):
        from generation.tiny_models import ensure_tiny_models

        target = ensure_tiny_models(Path(directory), rebuild=True)
        for model in sorted(path.name for path in target.iterdir() if path.is_dir()):
            self.stdout.write(str(target / model))
