from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.importing import ImportFileError, import_customers, open_csv_upload

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Import customers from a CSV file with a header line (see docs/importing.md). "
        "Bad rows are reported with their line and reasons; the others are imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file, UTF-8, with a header line.")
        parser.add_argument(
            "--report", metavar="REJECTED_CSV", help="Also write the rejected rows (line, reasons) to this file."
        )

    def handle(self, *args, file, report=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"There is no file {file!r}.")
        if report and not Path(report).resolve().parent.is_dir():
            raise CommandError(f"Cannot write the report to {report!r}: its folder does not exist.")
        with path.open("rb") as binary:
            total_lines = max(sum(block.count(b"\n") for block in iter(lambda: binary.read(1 << 16), b"")), 1)
            binary.seek(0)
            try:
                result = import_customers(
                    open_csv_upload(binary),
                    filename=path.name,
                    progress=lambda so_far: self._show_progress(so_far.last_line, total_lines),
                )
            except ImportFileError as exc:
                raise CommandError(f"{path}: {exc}") from None
        self.stderr.write("")  # ends the progress bar's line
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(warning))
        self.stdout.write(f"{path.name}: {result.summary()}")
        if result.rejections:
            self.stdout.write("Rejected rows:")
            for rejection in result.rejections:
                self.stdout.write(f"  line {rejection.line}: {'; '.join(rejection.reasons)}")
        if report:
            with open(report, "w", encoding="utf-8", newline="") as rejected:
                result.write_rejections_csv(rejected)
            self.stdout.write(f"Rejected rows written to {report}.")

    def _show_progress(self, line, total_lines):
        done = min(line / total_lines, 1.0)
        filled = round(BAR_WIDTH * done)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stderr.write(
            f"\rImporting [{bar}] {done:4.0%}  line {min(line, total_lines):,} of {total_lines:,}", ending=""
        )
        self.stderr.flush()
