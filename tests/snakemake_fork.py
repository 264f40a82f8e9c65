"""``snakemake`` calls for the tests, forked from one process that imported it.

Importing Snakemake and its plugins takes about a second of each of the
~80 ``snakemake`` calls the tests make, more than a dry run itself. This
module, run as a script, imports ``snakemake.cli`` once and then, for each
request on its stdin, forks a child that runs ``snakemake.cli.main`` with the
request's arguments, working directory and environment, its stdout and
stderr in files: the same code path as the ``snakemake`` command, less the
import. The server is single-threaded and imports nothing else, so forking
it is safe. :class:`ForkedSnakemake` is the client; ``workflow_helpers.smk``
uses one per test process, and ``tests/test_workflow.py`` checks that it
answers as the command does.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn


class ForkedSnakemake:
    """The client: starts the server on first use, one call at a time."""

    def __init__(self, python: Path):
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.pending = b""

    def _readline(self, timeout: float | None) -> dict:
        """The server's next reply; select() on the raw pipe, so no reply
        waits in a buffer select() cannot see."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            if not select.select([fd], [], [], timeout)[0]:
                raise TimeoutError
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("the snakemake fork server exited")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def run(self, args: list[str], cwd: Path, env: dict[str, str],
            timeout: float) -> subprocess.CompletedProcess:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([str(self.python), __file__], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, bufsize=0)
            self.pending = b""
        with tempfile.TemporaryDirectory() as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            request = {"args": args, "cwd": str(cwd), "env": env, "out": out, "err": err}
            data = json.dumps(request).encode() + b"\n"
            while data:  # an unbuffered pipe may take a long request in parts
                data = data[self.proc.stdin.write(data):]
            pid = self._readline(None)["pid"]
            try:
                rc = self._readline(timeout)["rc"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._readline(None)
                raise subprocess.TimeoutExpired(["snakemake", *args], timeout) from None
            return subprocess.CompletedProcess(["snakemake", *args], rc,
                                               Path(out).read_text(), Path(err).read_text())

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def _child(request: dict, main) -> NoReturn:
    """Run in the forked child: snakemake's main as the command runs it."""
    import atexit
    import traceback
    import warnings

    code = 1
    try:
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            os.dup2(os.open(path, flags, 0o644), fd)
        os.chdir(request["cwd"])
        # the one working directory Snakemake reads at import (a class
        # attribute's default): the header's "Run directory"
        from snakemake.workflow import Workflow
        Workflow._rundir = str(Path.cwd().absolute())
        os.environ.clear()
        os.environ.update(request["env"])
        if request["env"].get("PYTHONWARNINGS") == "ignore":  # read at start-up otherwise
            warnings.simplefilter("ignore")
        sys.argv = [os.path.join(os.path.dirname(sys.executable), "snakemake"), *request["args"]]
        try:
            main(request["args"])
            code = 0
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:  # sys.exit("message"), as the interpreter does it
                print(exit_.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def serve() -> None:
    from snakemake.cli import main

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, main)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    serve()
