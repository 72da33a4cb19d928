"""moto's server, in this process, on 127.0.0.1.

The endpoint is http://127.0.0.1:PORT (an IP, not `localhost`: S3 clients then use path-style
addressing). MOTO_PORT is set to PORT as soon as the socket is bound: moto's Step Functions
interpreter calls Lambda / DynamoDB / SQS / SNS through boto3 at localhost:$MOTO_PORT.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import threading

from .counters import CountingMiddleware
from .errors import StackError


def configure_moto() -> None:
    """moto configuration shared by the launcher and the tests: run the real ASL."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, log_file: str | None = None):
        self.host = host
        self.requested_port = port
        self.log_file = log_file
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "MotoServer":
        from werkzeug.serving import make_server

        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        configure_moto()
        wlog = logging.getLogger("werkzeug")
        wlog.propagate = False
        wlog.setLevel(logging.WARNING)
        if self.log_file:
            handler = logging.FileHandler(self.log_file)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
            for name in ("werkzeug", "moto"):
                logging.getLogger(name).addHandler(handler)
            logging.getLogger("moto").propagate = False
        # The counters are for `make bench`; they never change a request or its response.
        app = CountingMiddleware(DomainDispatcherApplication(create_backend_app))
        busy = StackError(f"port {self.requested_port} on {self.host} is busy: pass another --port, or --port 0 for a free one")
        try:
            # Bound here, in the caller's thread, so a busy port fails at once (moto's own
            # ThreadedMotoServer binds in its thread and then waits forever). werkzeug prints and
            # calls sys.exit(1) when it cannot bind: turned into one StackError line.
            with contextlib.redirect_stderr(io.StringIO()) as err:
                self._server = make_server(
                    self.host, self.requested_port, app, threaded=True, request_handler=MotoRequestHandler
                )
        except SystemExit:
            if "in use" in err.getvalue():
                raise busy from None
            raise StackError(f"cannot listen on {self.host}:{self.requested_port}: {err.getvalue().splitlines()[0] if err.getvalue() else 'error'}") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise busy from None
            raise StackError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror}") from None
        self._server.daemon_threads = True
        os.environ["MOTO_PORT"] = str(self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
