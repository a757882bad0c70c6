from django.core.management.base import BaseCommand, CommandError

from customers.exporting import export_customers
from customers.models import Customer


class Command(BaseCommand):
    help = "Export every customer as CSV, in the columns import_customers reads back."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="Where to write the CSV (default: standard output).")
        parser.add_argument(
            "--no-formula-protection",
            dest="protect_formulas",
            action="store_false",
            help="Write cells that start with =, +, -, @, a tab or a carriage return as stored, without the "
            "leading ' that stops a spreadsheet running them as formulas: for a program that is not a "
            "spreadsheet. import_customers reads both, but always takes away a ' before such a character: "
            "a stored '=x written this way imports back as =x.",
        )

    def handle(self, *args, file=None, protect_formulas=True, **options):
        customers = Customer.objects.all()
        if file is None:
            count = export_customers(customers, self.stdout, protect_formulas=protect_formulas)
            self.stderr.write(f"{count:,} customers exported.")
            return
        try:
            with open(file, "w", encoding="utf-8", newline="") as stream:
                count = export_customers(customers, stream, protect_formulas=protect_formulas)
        except OSError as exc:
            raise CommandError(f"Cannot write {file!r}: {exc.strerror}.") from None
        self.stderr.write(f"{count:,} customers exported to {file}.")
