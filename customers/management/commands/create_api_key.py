from django.core.management.base import BaseCommand, CommandError

from customers import api_keys
from customers.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for the events API and print it (once: only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name for the key; also the source of the events it sends.")
        parser.add_argument("--rate-limit", type=int, default=600, help="Requests per minute (default 600).")

    def handle(self, *args, name, rate_limit, **options):
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"There is already a key named {name!r}; pick another name or revoke it in the admin.")
        api_key, key = api_keys.create(name, rate_limit_per_minute=rate_limit)
        self.stdout.write(f"API key {api_key.name!r} created. Copy it now, it is not shown again:")
        self.stdout.write(key)
