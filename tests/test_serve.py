"""`manage.py serve`: refuses several processes without Redis, and the supervisord configuration it writes
(the real run is tests/cluster/test_cluster.py::test_serve_runs_the_web_processes_on_one_socket_and_stops_them_all)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from guyue.lib import supervise


def test_it_refuses_several_processes_without_redis(settings):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("serve", processes=2, print_config=True)


def test_one_process_needs_no_redis(settings):
    settings.REDIS_URL = ""
    out = StringIO()
    call_command("serve", processes=1, print_config=True, stdout=out)
    assert "numprocs=1" in out.getvalue()


def test_the_processes_default_to_the_setting(settings):
    settings.REDIS_URL, settings.WEB_PROCESSES = "redis://127.0.0.1:6379/0", 3
    out = StringIO()
    call_command("serve", print_config=True, port=9001, stdout=out)
    assert "numprocs=3" in out.getvalue() and "socket=tcp://127.0.0.1:9001" in out.getvalue()


@pytest.mark.parametrize("proxy", [False, True])
def test_the_config_shares_one_socket_and_runs_the_worker(proxy):
    plan = supervise.Plan(host="127.0.0.1", port=8000, processes=2, python=Path("/venv/bin/python"),
                          workdir=Path("/app"), rundir=Path("/run/x"), proxy_headers=proxy)
    text = supervise.config(plan)
    web = text.split("[fcgi-program:web]")[1].split("[program:worker]")[0]
    assert "socket=tcp://127.0.0.1:8000" in web and "numprocs=2" in web and "%(process_num)d" in web
    assert "/venv/bin/daphne --fd 0" in web and ("--proxy-headers" in web) is proxy
    assert f"/venv/bin/python manage.py {supervise.WORKER_COMMAND}" in text.split("[program:worker]")[1]
    assert "pidfile=/run/x/supervisord.pid" in text and "nodaemon=true" in text
    no_worker = supervise.config(supervise.Plan(**{**plan.__dict__, "worker": False}))
    assert "[program:worker]" not in no_worker
