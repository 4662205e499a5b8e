from django.core.management.base import BaseCommand

from accounts import dev_keys


class Command(BaseCommand):
    help = (
        "Print a session token signed by the local dev key (var/dev-clerk). Start the service with "
        "CLERK_JWT_KEY set to var/dev-clerk/public.pem's text to accept it. Never for production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", default="user_dev", help="Clerk-style user id (sub)")
        parser.add_argument("--email", default="dev@example.com")
        parser.add_argument("--hours", type=float, default=12)
        parser.add_argument(
            "--azp", default="", help="authorized party claim, if the service checks one"
        )
        parser.add_argument(
            "--public-key", action="store_true", help="print the public key (PEM) instead"
        )

    def handle(self, *args, user, email, hours, azp, public_key, **options):
        if public_key:
            self.stdout.write(dev_keys.ensure_keys()[1], ending="")
        else:
            self.stdout.write(dev_keys.mint_token(user, hours=hours, email=email, azp=azp))
