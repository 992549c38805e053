"""A small MCP server written with the ``mcp`` SDK, for the tests: docs look-ups and a dataset reader.

Run it as ``python -m tests.support.mcp_server stdio`` or ``... http PORT`` (streamable HTTP on loopback).
It writes its process id to ``$MCP_PID_FILE`` when that is set, so a test can kill it mid-mission, and it
counts the calls it serves in ``$MCP_CALLS_FILE`` (one line per call), so a test can tell what really ran.
"""

from __future__ import annotations

import json
import os
import sys

from mcp.server.fastmcp import FastMCP

SECRET_IN_RESULT = "ghp_9fT4kLm2Qx7Rz1Vb8Nc3Wd6Ye5Ua0Sp2Ko1Ij"
"""A token the server leaks in a result: the record must never show it."""


def _note(line: str) -> None:
    path = os.environ.get("MCP_CALLS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def build(port: int = 0) -> FastMCP:
    server = FastMCP("test-docs", host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool()
    def library_docs(library: str, topic: str = "", api_key: str = "") -> str:
        """Documentation of a library on a topic (a stand-in for Context7's get-library-docs).

        Args:
            library: Library name, e.g. scikit-learn.
            topic: What to look up.
            api_key: A key the server does not need; sent by careless callers.
        """
        _note(f"library_docs {library} {topic}")
        return json.dumps({"library": library, "topic": topic,
                           "doc": f"{library}: {topic or 'overview'} -- IsolationForest(contamination='auto')",
                           "debug": f"served with token {SECRET_IN_RESULT}"})

    @server.tool()
    def read_dataset(path: str) -> str:
        """Read the first line of a dataset (a stand-in for a data-access server).

        Args:
            path: The dataset's path or URL.
        """
        _note(f"read_dataset {path}")
        return f"first row of {path}: id,score"

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails with the reason given (an MCP tool error).

        Args:
            reason: What to say.
        """
        raise ValueError(f"refused: {reason}")

    return server


def main() -> None:
    pid_file = os.environ.get("MCP_PID_FILE")
    if pid_file:
        with open(pid_file, "w", encoding="utf-8") as out:
            out.write(str(os.getpid()))
    transport = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if transport == "stdio":
        build().run("stdio")
    else:
        build(int(sys.argv[2])).run("streamable-http")


if __name__ == "__main__":
    main()
