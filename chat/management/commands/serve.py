"""`manage.py serve`: every core of one machine. supervisord runs WEB_PROCESSES daphne processes on one
shared socket and the background worker, in the foreground, until SIGTERM or Ctrl-C (docs/deploy.md)."""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from guyue.lib import supervise

# Stop signals become supervisord's SIGTERM (stop everything, then exit); SIGHUP stays SIGHUP (restart
# every process on the same socket).
FORWARDED = {signal.SIGTERM: signal.SIGTERM, signal.SIGINT: signal.SIGTERM, signal.SIGQUIT: signal.SIGTERM,
             signal.SIGHUP: signal.SIGHUP}


class Command(BaseCommand):
    help = "在一台机器上用全部核心提供服务：多个 daphne 进程共用一个端口，外加后台任务进程（supervisord）。"

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        parser.add_argument("--processes", type=int, help="daphne processes (default WEB_PROCESSES)")
        parser.add_argument("--no-worker", action="store_true", help="run the web processes only")
        parser.add_argument("--print-config", action="store_true", help="print the supervisord config and exit")
        parser.add_argument("--app", default=supervise.ASGI_APPLICATION, help=argparse.SUPPRESS)  # bench/stream.py

    def handle(self, *args, host, port, processes, no_worker, print_config, app, **options):
        processes = processes or settings.WEB_PROCESSES
        try:
            supervise.check(processes, settings.REDIS_URL)
        except supervise.NeedsRedis as exc:
            raise CommandError(str(exc)) from None
        rundir = Path(tempfile.mkdtemp(prefix="guyue-serve-"))
        try:
            plan = supervise.Plan(host=host, port=port, processes=processes, python=Path(sys.executable),
                                  workdir=Path(settings.BASE_DIR), rundir=rundir, worker=not no_worker,
                                  proxy_headers=settings.TRUST_X_FORWARDED_FOR, app=app)
            text = supervise.config(plan)
            if print_config:
                self.stdout.write(text, ending="")
                return
            conf = rundir / "supervisord.conf"
            conf.write_text(text)
            self.stderr.write(f"serving http://{host}:{port}/ with {processes} daphne process(es)"
                              + ("" if no_worker else f" and manage.py {supervise.WORKER_COMMAND}"))
            code = self._supervise(conf)
        finally:
            shutil.rmtree(rundir, ignore_errors=True)
        if code:
            raise CommandError(f"supervisord exited with status {code}")

    def _supervise(self, conf: Path) -> int:
        """supervisord in its own session, so a terminal's Ctrl-C reaches it once, through us: it then
        stops every daphne (SIGTERM: streaming replies are saved as stopped) and the worker."""
        supervisord = Path(sys.executable).with_name("supervisord")
        child = subprocess.Popen([str(supervisord), "-c", str(conf)], start_new_session=True)

        def forward(signum, frame):
            child.send_signal(FORWARDED[signum])

        for signum in FORWARDED:
            signal.signal(signum, forward)
        return child.wait()
