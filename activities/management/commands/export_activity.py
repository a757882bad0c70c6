from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from activities import files
from activities.models import Activity


class Command(BaseCommand):
    help = (
        "Write an activity as an activity file that import_activity reads back "
        "(JSON unless --format yaml or an --output name ending .yaml/.yml)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The activity's name, as in the admin.")
        parser.add_argument("--format", choices=files.FileFormat.values, help="json (default) or yaml.")
        parser.add_argument("--output", metavar="FILE", help="Write here instead of standard output.")

    def handle(self, *args, name: str, format=None, output=None, **options):
        activity = Activity.objects.filter(name=name).first()
        if activity is None:
            names = ", ".join(repr(each) for each in Activity.objects.values_list("name", flat=True)[:20])
            raise CommandError(f"There is no activity named {name!r}. Activities: {names or 'none yet'}.")
        file_format = (
            files.FileFormat(format)
            if format
            else (
                files.FileFormat.YAML
                if output and output.lower().endswith(files.YAML_SUFFIXES)
                else files.FileFormat.JSON
            )
        )
        text = files.render(activity, file_format=file_format)
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {output!r}: {exc.strerror}.") from None
        self.stderr.write(f"{activity.name} (version {activity.version}) written to {output}.")
