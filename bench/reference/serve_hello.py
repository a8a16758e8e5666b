"""Serve the hello-world app through *our* server runner (`bookshelf.cli._run_server`), so it
gets exactly the flags `bookshelf serve` gives uvicorn (uvloop, httptools, workers, keep-alive,
no access log). Only the application path handed to `uvicorn.run` is swapped.

Usage (from the repository root): python -m bench.reference.serve_hello [--port N]
"""

import sys

import uvicorn

from bookshelf import cli

HELLO_APP = "bench.reference.hello:create_app"


def main() -> int:
    real_run = uvicorn.run

    def run_hello(app: object, **flags: object) -> None:
        real_run(HELLO_APP, **flags)  # type: ignore[arg-type]

    uvicorn.run = run_hello  # type: ignore[assignment]
    return cli.main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
