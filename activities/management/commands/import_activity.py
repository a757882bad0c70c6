import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from activities import files
from activities.spec import SpecError


class _Refused(Exception):
    """Rolls back the files loaded before a refused one."""


class Command(BaseCommand):
    help = (
        "Create or update activities from activity files (JSON, or YAML by the .yaml/.yml extension; "
        "'-' reads JSON from standard input). See docs/activities.md. All files load or none: "
        "a file with any problem is refused with every problem listed, and nothing is saved."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="FILE", help="An activity file, or - for JSON on stdin.")

    def handle(self, *args, paths: list[str], **options):
        refused: dict[str, list[str]] = {}
        imported: list[tuple[str, files.Imported]] = []
        try:
            with transaction.atomic():
                for name in paths:
                    try:
                        imported.append((name, files.import_data(self._read(name))))
                    except SpecError as exc:
                        refused[name] = exc.problems
                if refused:
                    raise _Refused
        except _Refused:
            for name, problems in refused.items():
                for problem in problems:
                    self.stderr.write(f"{name}: {problem}")
            raise CommandError(
                f"{len(refused)} of {len(paths)} file(s) refused; nothing was imported. Fix the problems above and run again."
            ) from None
        for name, result in imported:
            self.stdout.write(f"{name}: {result.summary()}")

    def _read(self, name: str):
        if name == "-":
            return files.parse(sys.stdin.read(), file_format=files.FileFormat.JSON)
        file_format = files.format_of(name)
        try:
            content = Path(name).read_bytes()
        except FileNotFoundError:
            raise SpecError(["there is no such file"]) from None
        except OSError as exc:
            raise SpecError([f"cannot be read: {exc.strerror}"]) from None
        return files.parse(content, file_format=file_format)
