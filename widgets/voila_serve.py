"""The Voila server that ``lora-nb dashboard`` execs: ``python -m voila`` with changes for the token.

Here (``lora_nb.widgets``) and not in ``lora_nb.cli``: the core never imports Voila (tests/core/test_layers.py);
the launcher names this module on the command line only.


1. Voila serves ``/voila/files/...`` (run outputs for download from the Jobs panel) with a plain tornado
   static-file handler that never asks for the token: with ``--token`` set, anyone who reached the port
   could still download every LoRA, config and log of the workspace. Here that handler also requires
   the login (the token in the URL, the ``Authorization: token ...`` header, or the cookie the page got
   when it was opened with ``?token=``); without the token a download is redirected to the login page.
   Without a token (loopback only) nothing changes: everyone is the anonymous user.
2. The token comes in the environment (``LORA_NB_VOILA_TOKEN``), is removed from it before anything
   starts, and is handed to Voila inside this process: it is never on a command line (``ps`` shows
   those to every local user) and the kernels, and the jobs they start, never inherit it.
3. Voila copies the page's request into its kernel's environment (``QUERY_STRING``,
   ``VOILA_REQUEST_URL``), so a visit to ``/?token=...`` would hand the token to the kernel and to every
   job it starts. The page handler drops ``token`` from the request once the login has used it (the
   login cookie is set by then), before Voila reads it.

    $ LORA_NB_VOILA_TOKEN=s3cret python -m lora_nb.widgets.voila_serve NOTEBOOK --port=8866 ...
"""
from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["TOKEN_ENV", "token_file_handler", "page_handler", "drop_token", "main"]

TOKEN_ENV = "LORA_NB_VOILA_TOKEN"     # lora_nb.cli.dashboard.TOKEN_ENV: the launcher sets it


def token_file_handler() -> type:
    """Voila's allow-list file handler behind the server's login (``web.authenticated``)."""
    from jupyter_server.base.handlers import JupyterHandler
    from tornado import web
    from voila.static_file_handler import AllowListFileHandler

    class TokenFileHandler(JupyterHandler, AllowListFileHandler):
        """``/voila/files/...`` only for a visitor with the token (else a redirect to the login page)."""

        @web.authenticated
        def head(self, path: str) -> Any:
            return AllowListFileHandler.head(self, path)

        @web.authenticated
        def get(self, path: str, include_body: bool = True) -> Any:
            return AllowListFileHandler.get(self, path, include_body)

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            # tornado's plain error page: the server's templated one needs settings Voila does not set
            web.RequestHandler.write_error(self, status_code, **kwargs)

    return TokenFileHandler


def drop_token(request: Any) -> None:
    """Remove the ``token`` query argument from a tornado request (its uri, query and argument maps).

    >>> from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
    >>> r = HTTPServerRequest(start_line=RequestStartLine("GET", "/?token=s3cret&x=1", "HTTP/1.1"),
    ...                       headers=HTTPHeaders({"Host": "127.0.0.1"}))
    >>> drop_token(r); (r.uri, r.query, dict(r.arguments))
    ('/?x=1', 'x=1', {'x': [b'1']})
    """
    from urllib.parse import parse_qsl, urlencode

    if "token" not in request.query_arguments:
        return
    request.query = urlencode([(k, v) for k, v in parse_qsl(request.query, keep_blank_values=True) if k != "token"])
    request.uri = request.path + (f"?{request.query}" if request.query else "")
    request.query_arguments.pop("token", None)
    request.arguments.pop("token", None)


def page_handler() -> type:
    """Voila's page handler that forgets the token once the login has used it (so kernels never see it)."""
    from voila.tornado.handler import TornadoVoilaHandler

    class TokenlessPageHandler(TornadoVoilaHandler):
        async def prepare(self) -> None:
            await super().prepare()      # the login: reads ?token= and sets the cookie
            drop_token(self.request)

    return TokenlessPageHandler


def main(argv: list[str] | None = None) -> None:
    """Start Voila with ``argv`` (default: this process's arguments) and the token from the environment."""
    token = os.environ.pop(TOKEN_ENV, "")
    os.environ.pop("LORA_NB_TOKEN", None)           # the CLI's own variable: not for kernels either
    import voila.app

    voila.app.AllowListFileHandler = token_file_handler()   # app.py looks the names up when it builds its handlers
    voila.app.TornadoVoilaHandler = page_handler()
    args = list(sys.argv[1:] if argv is None else argv)
    sys.argv = [sys.argv[0], *args, f"--token={token}"]      # in this process only; /proc/<pid>/cmdline keeps the exec'd line
    voila.app.main()


if __name__ == "__main__":  # pragma: no cover
    main()
