"""`manage.py worker`: the site's worker process — image jobs (chat/media/worker.py) and background
model jobs (chat/jobs/runner.py) — until SIGTERM or Ctrl-C (docs/jobs.md)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from django.core.management.base import BaseCommand

from chat.jobs.runner import JobRunner
from chat.media.worker import Worker

logger = logging.getLogger("chat.jobs.runner")


class Command(BaseCommand):
    help = "后台进程：生成图像，并运行滚动摘要、记忆提取、接续问候等模型任务。"

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="exit when no job of either kind is left to claim")
        parser.add_argument("--worker-id", help="name recorded on claimed jobs (default host:pid:random)")

    def handle(self, *args, once=False, worker_id=None, **options):
        images = Worker(worker_id=worker_id)
        jobs = JobRunner(worker_id=worker_id or images.id)
        image_thread = threading.Thread(target=images.run, kwargs={"once": once}, name="mediaworker", daemon=True)

        def stop(signum, frame):
            logger.info("worker %s: %s received, handing unfinished jobs back", jobs.id, signal.Signals(signum).name)
            images.request_stop()
            jobs.request_stop()
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C stops at once

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        logger.info("worker %s started", jobs.id)
        image_thread.start()
        ran = asyncio.run(jobs.serve(once=once))
        if not once:
            images.request_stop()
        image_thread.join()
        logger.info("worker %s stopped after %d background job(s) and %d image job(s)", jobs.id, ran,
                    images.processed)  # fmt: skip
