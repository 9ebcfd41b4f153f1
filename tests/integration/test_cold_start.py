"""`import app` opens no connection and creates no client (cold start, SPEC 9)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_app_creates_no_client_and_opens_no_socket() -> None:
    probe = textwrap.dedent(
        """
        import socket, sys
        opened = []
        class Refusing(socket.socket):
            def connect(self, address):
                opened.append(address)
                raise OSError("no connections at import time")
        socket.socket = Refusing
        import botocore.session
        created = []
        original = botocore.session.Session.create_client
        def counting(self, *args, **kwargs):
            created.append(args[0] if args else kwargs.get("service_name"))
            return original(self, *args, **kwargs)
        botocore.session.Session.create_client = counting
        import app
        assert app.app.app_name == "studio-uploads"
        print("clients", created, "connections", opened)
        print("pymongo imported", "pymongo" in sys.modules)
        sys.exit(1 if created or opened else 0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clients [] connections []" in result.stdout


def test_import_app_leaves_prometheus_client_for_the_first_scrape() -> None:
    probe = "import sys, app; print('prometheus_client' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_import_app_leaves_the_store_driver_for_the_first_invocation_that_needs_it() -> None:
    """The CloudWatch metrics module is imported with the app; the worker package it reads (pymongo and
    the upload engine with it) is not."""
    probe = "import sys, app; print('pymongo' in sys.modules, 'chalicelib.worker' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"
