"""`manage.py mediaworker`: run image jobs until SIGTERM or Ctrl-C (see chat/media/worker.py)."""

from __future__ import annotations

import logging
import signal

from django.core.management.base import BaseCommand

from chat.media.worker import Worker, WorkerOptions

logger = logging.getLogger("chat.media.worker")


class Command(BaseCommand):
    help = "生成图像的后台进程：领取图像任务、提交给模型服务、下载并保存图片。"

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, help="jobs run at once (default IMAGE_WORKER_CONCURRENCY)")
        parser.add_argument("--once", action="store_true", help="exit when no job is left to claim")
        parser.add_argument("--worker-id", help="name recorded on claimed jobs (default host:pid:random)")

    def handle(self, *args, concurrency=None, once=False, worker_id=None, **options):
        worker_options = WorkerOptions()
        if concurrency:
            worker_options.concurrency = concurrency
        worker = Worker(worker_id=worker_id, options=worker_options)

        def stop(signum, frame):
            logger.info("image worker %s: %s received, finishing the current steps", worker.id,
                        signal.Signals(signum).name)  # fmt: skip
            worker.request_stop()
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C stops at once

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        logger.info("image worker %s started (concurrency %d)", worker.id, worker_options.concurrency)
        processed = worker.run(once=once)
        logger.info("image worker %s stopped after %d job(s)", worker.id, processed)
