"""The embedded broker: kombu's file-system transport, made safe for several processes.

Without REDIS_URL, web, worker and beat share a folder of message files
(``triggerhub-fs://``, settings.py). Kombu's own transport creates a message file
under its final name and then writes it, and its reader takes no lock: a worker
that looks at the wrong moment reads an empty file, fails on it, and stops as on
an unrecoverable error (it did so in ``manage.py demo`` on a loaded machine). The
exchange tables in the control folder are created and written the same way.

Here every file is written under a name no reader looks at (``.partial-…``) and
renamed into place (``os.replace`` is atomic on one file system), so a reader sees
a whole file or none. A reader claims a message by renaming it to
``.claimed-<its name>`` in the same folder: of two consumers after one file, one
rename succeeds and the other finds nothing, so a message is delivered once. A file
that cannot be decoded (left by another program) is set aside as
``.unreadable-<its name>`` with an error in the log, and the worker goes on. A file
that cannot be read for a passing reason (too many open files, an I/O error) is put
back under its name and the error raised as kombu's ChannelError, after which the
worker connects again (``CELERY_BROKER_CHANNEL_ERROR_RETRY``) and reads it later.

A process killed mid-way leaves its files behind; consumers clear them up when they
first poll and every 30 s after: a claim older than a minute (its consumer died
between claiming the file and removing it) goes back into the queue, and a partial
write older than a minute is deleted. A message put back may have been delivered
already, which our idempotent tasks allow.

What this does not give: a consumer killed after taking a message and before acking
it loses the message, as with kombu's transport (tasks are idempotent, and the
sweepers publish again from the rows what was lost).
"""

import contextlib
import logging
import os
import shutil
import time
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

#: The broker URL scheme of this transport: ``triggerhub-fs://``.
SCHEME = "triggerhub-fs"

# A name starting with a dot never matches a reader's "<anything>.<queue>.msg"
# pattern (kombu's reader compares what follows the first dot), nor an exchange file.
PARTIAL_PREFIX = ".partial-"
CLAIMED_PREFIX = ".claimed-"
UNREADABLE_PREFIX = ".unreadable-"

#: A claim or a partial write this old was left by a process that died: a live one
#: holds either for the time of one small read or write.
ABANDONED_AFTER_SECONDS = 60
RECOVERY_INTERVAL_SECONDS = 30


def register_scheme() -> None:
    """Let broker URLs name this transport by ``triggerhub-fs://`` (done by triggerhub.celery)."""
    TRANSPORT_ALIASES[SCHEME] = "triggerhub.broker:Transport"


def write_atomically(path, content: bytes) -> None:
    """Write ``path`` so that a reader finds its old content, or all of the new, never part."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f"{PARTIAL_PREFIX}{uuid.uuid4().hex}-{name}")
    try:
        with open(partial, "wb") as f:
            f.write(content)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


class Channel(filesystem.Channel):
    """Kombu's file-system channel with atomic writes and claims."""

    #: When _get next looks for files left by killed processes: at once, then every 30 s.
    _next_recovery = float("-inf")

    def _put(self, queue, payload, **kwargs):
        # Readers take files in name order: zero-padded, so that order is the clock's
        # (kombu's unpadded 999_ would sort after 1000_).
        name = f"{round(monotonic() * 1000):015d}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            write_atomically(path, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc

    def _get(self, queue):
        if monotonic() >= self._next_recovery:
            self._recover_abandoned_files()
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            path = os.path.join(self.data_folder_in, name)
            claimed = os.path.join(self.data_folder_in, CLAIMED_PREFIX + name)
            try:
                # A claim's age is its file's mtime, which a rename keeps: touched first, a
                # message that waited long is not taken for a claim abandoned long ago.
                os.utime(path)
                os.rename(path, claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            except OSError as exc:
                raise ChannelError(f"Cannot claim message file {path!r}") from exc
            try:
                with open(claimed, "rb") as f:
                    content = f.read()
            except FileNotFoundError:
                continue  # we were paused past ABANDONED_AFTER_SECONDS and the claim was put back
            except OSError as exc:
                self._put_back(claimed, name)
                raise ChannelError(f"Cannot read message file {name!r} ({exc}); it stays in the queue") from exc
            try:
                payload = loads(bytes_to_str(content))
            except ValueError as exc:  # also JSONDecodeError and UnicodeDecodeError
                self._set_aside(claimed, name, exc)
                continue
            self._dispose(claimed, name)
            return payload
        raise Empty()

    def _dispose(self, claimed, name):
        try:
            if self.store_processed:
                shutil.move(claimed, os.path.join(self.processed_folder, name))
            else:
                os.remove(claimed)
        except FileNotFoundError:
            pass  # put back meanwhile (see _get): delivered again later, as at-least-once allows
        except OSError as exc:
            raise ChannelError(
                f"Cannot remove message file {claimed!r} after reading it; it goes back into the queue"
                f" after {ABANDONED_AFTER_SECONDS} s"
            ) from exc

    def _put_back(self, claimed, name):
        """Undo the claim of a file that could not be read for a passing reason."""
        # Should this rename fail too, _recover_abandoned_files puts the claim back later.
        with contextlib.suppress(OSError):
            os.rename(claimed, os.path.join(self.data_folder_in, name))

    def _set_aside(self, claimed, name, exc):
        unreadable = os.path.join(self.data_folder_in, UNREADABLE_PREFIX + name)
        with contextlib.suppress(OSError):
            os.replace(claimed, unreadable)
        log.error("embedded broker: message file %s cannot be read (%s); set aside as %s", name, exc, unreadable)

    def _recover_abandoned_files(self):
        """Put back the claims, and delete the partial writes, of processes killed mid-way."""
        self._next_recovery = monotonic() + RECOVERY_INTERVAL_SECONDS
        abandoned_before = time.time() - ABANDONED_AFTER_SECONDS
        for folder in {self.data_folder_in, self.data_folder_out, str(self.control_folder)}:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if name.startswith((CLAIMED_PREFIX, PARTIAL_PREFIX)):
                    self._recover(os.path.join(folder, name), abandoned_before=abandoned_before)

    def _recover(self, path, *, abandoned_before):
        folder, name = os.path.split(path)
        # Clearing up is a courtesy to the next reader: a failure here must not stop the worker.
        try:
            if os.stat(path).st_mtime > abandoned_before:
                return
            if name.startswith(PARTIAL_PREFIX):
                os.remove(path)
                return
            message = name.removeprefix(CLAIMED_PREFIX)
            os.rename(path, os.path.join(folder, message))
        except FileNotFoundError:
            return  # another process cleared it up first
        except OSError as exc:
            log.warning("embedded broker: cannot clear up %s, left by a process that stopped (%s)", path, exc)
            return
        log.warning(
            "embedded broker: message file %s was left claimed by a consumer that stopped;"
            " it is back in the queue (its task may run twice)",
            message,
        )

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._exchange_table(exchange) as (file, bindings):
            if binding not in bindings:
                write_atomically(file, str_to_bytes(dumps([binding, *bindings])))

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        self._purge(queue)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._exchange_table(exchange) as (file, bindings):
            if binding in bindings:
                bindings.remove(binding)
                write_atomically(file, str_to_bytes(dumps(bindings)))

    @contextlib.contextmanager
    def _exchange_table(self, exchange):
        """The exchange's file and bindings, locked against other writers while in use."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        # Readers need no lock (every write replaces the file whole); writers take this
        # one so that two processes binding at once do not each drop the other's binding.
        with open(file.with_name(file.name + ".lock"), "a") as lock_file:
            filesystem.lock(lock_file, filesystem.LOCK_EX)
            try:
                yield str(file), self.get_table(exchange)
            finally:
                filesystem.unlock(lock_file)


class Transport(filesystem.Transport):
    """Kombu's file-system transport with :class:`Channel`, and no host to connect to."""

    Channel = Channel

    @property
    def default_connection_params(self):
        # Kombu's virtual transports default to host "localhost", and kombu warns
        # "No hostname was supplied" for every connection of a URL without one.
        # A folder has no host: no default, no warning.
        return {"port": self.default_port}
