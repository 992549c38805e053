"""MCP servers' tools for the agents, loaded through ``langchain-mcp-adapters``, called through the policy layer.

Each server runs once per process, its session held open by a task of one background event loop (the agents'
loops are synchronous and run in LangGraph's threads). Its tools reach an agent as :class:`McpTool` objects:
ordinary LangChain tools with the server's name, description and JSON schema, which the executor runs like
any other (allowlist, production-data approval, redaction, journal, audit event, duration).

A server that does not start, stops answering or dies is a :class:`ToolError` for the call that meets it,
never a crash: the session is dropped and the next call starts the server again (at most every
``_RETRY_AFTER_S`` seconds). When a server is down as an agent's tools are loaded, the tools it had are
offered still (each call says the server is down), or one stand-in named ``mcp_<server>`` when it never
started in this process.

``pip install 'ml-orchestrator[mcp]'`` brings ``mcp`` and ``langchain-mcp-adapters``; they are imported only
when a server is configured.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.tools import BaseTool

from orchestrator.config import Settings
from orchestrator.errors import ConfigError, ToolError
from orchestrator.mcp_config import DOCS_SERVERS, McpServer
from tools.policy import digest

__all__ = ["McpTool", "LoadedServers", "load_servers", "servers_for", "close_all", "tool_source"]

log = logging.getLogger(__name__)

_RETRY_AFTER_S = 5.0
"""A server that just failed is not started again before this many seconds: a dead server costs each call
an immediate error, not a start-up timeout."""
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _sanitise(name: str) -> str:
    return _TOOL_NAME.sub("_", name)[:64]


def servers_for(agent: Any, settings: Settings) -> dict[str, McpServer]:
    """The MCP servers an agent gets: its own (``mcpServers``, a bare name taken from the settings) and the
    settings' servers, except that one named like a docs capability serves only the agents that list it."""
    out: dict[str, McpServer] = {}
    for name, spec in agent.mcp_servers.items():
        if spec is None:
            if name not in settings.mcp_servers:
                if name in DOCS_SERVERS:
                    continue  # the offline lookup serves it
                raise ConfigError(f"agent {agent.name!r} ({agent.source}) names MCP server {name!r}, which is not "
                                  "configured: declare it in the agent's mcpServers or in ORCH_MCP_SERVERS")
            spec = settings.mcp_servers[name]
        out[name] = spec
    for name, spec in settings.mcp_servers.items():
        if name in out:
            continue
        if name in DOCS_SERVERS and name not in agent.tools:
            continue
        out[name] = spec
    return out


# -- the process's servers ------------------------------------------------------------------------------------


@dataclass
class _Server:
    """One running (or failed) server and its session, owned by the hub's event loop."""

    name: str
    key: str
    spec: McpServer
    session: Any = None
    tools: dict[str, BaseTool] = field(default_factory=dict)
    """The adapter's tools of the live session, by the server's own tool names."""
    known: list[Any] = field(default_factory=list)
    """The server's tool descriptions (``mcp.types.Tool``) as last listed: offered while it is down."""
    error: str | None = None
    failed_at: float = 0.0
    stop: asyncio.Event | None = None
    task: asyncio.Task[None] | None = None
    starting: threading.Lock = field(default_factory=threading.Lock)
    """Held while the server starts: two missions needing it at once start it once."""

    @property
    def up(self) -> bool:
        return self.session is not None and self.task is not None and not self.task.done()


class _Hub:
    """The background event loop and the servers it holds open."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: dict[str, _Server] = {}
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="mcp-servers", daemon=True).start()
                self._loop = loop
                atexit.register(self.close_all)  # stop the servers' processes and sessions with ours
            return self._loop

    def _submit(self, coro: Any, timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def server(self, name: str, spec: McpServer) -> _Server:
        key = f"{name}:{digest(spec.model_dump(mode='json'))[:16]}"
        with self._lock:
            return self._servers.setdefault(key, _Server(name=name, key=key, spec=spec))

    def start(self, server: _Server, *, timeout: float) -> None:
        """Start ``server`` unless it is up; raises :class:`ToolError` when it cannot be."""
        with server.starting:
            if server.up:
                return
            if server.error and time.monotonic() - server.failed_at < _RETRY_AFTER_S:
                raise ToolError(f"MCP server {server.name!r} is unavailable: {server.error}")
            try:
                self._submit(self._start(server, timeout), timeout + 5)
            except (FutureTimeout, TimeoutError):
                self._failed(server, f"it did not start within {timeout:g} s (ORCH_MCP_START_TIMEOUT_S)")
            if not server.up:
                raise ToolError(f"MCP server {server.name!r} could not be started: {server.error}")

    async def _start(self, server: _Server, timeout: float) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        server.stop = asyncio.Event()
        server.task = asyncio.create_task(self._hold(server, ready), name=f"mcp:{server.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
        except TimeoutError:
            server.stop.set()
            self._failed(server, f"it did not start within {timeout:g} s (ORCH_MCP_START_TIMEOUT_S)")

    async def _hold(self, server: _Server, ready: asyncio.Future[None]) -> None:
        """The server's session, open from start to stop (its context must enter and exit in one task)."""
        from langchain_mcp_adapters.sessions import create_session
        from langchain_mcp_adapters.tools import _list_all_tools, convert_mcp_tool_to_langchain_tool

        try:
            async with create_session(server.spec.connection(name=server.name)) as session:  # type: ignore[arg-type]
                await session.initialize()
                listed = await _list_all_tools(session)
                server.tools = {t.name: convert_mcp_tool_to_langchain_tool(session, t, server_name=server.name,
                                                                           handle_tool_errors=False) for t in listed}
                server.known, server.session, server.error = listed, session, None
                ready.set_result(None)
                assert server.stop is not None
                await server.stop.wait()
        except BaseException as exc:  # noqa: BLE001 - a server's failure of any kind is its error, not ours
            reason = _describe(exc)
            if not ready.done():
                ready.set_result(None)
                self._failed(server, reason)
            elif server.session is not None and server.error is None:
                self._failed(server, f"it stopped: {reason}")
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            server.session = None
            server.tools = {}

    def _failed(self, server: _Server, reason: str) -> None:
        server.error, server.failed_at, server.session = reason, time.monotonic(), None
        if server.stop is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(server.stop.set)
        log.warning("MCP server %s: %s", server.name, reason)

    def call(self, server: _Server, tool: str, args: dict[str, Any], *, timeout: float,
             start_timeout: float) -> Any:
        """Call ``tool`` on ``server`` (started if it is down); the adapter's content blocks."""
        self.start(server, timeout=start_timeout)
        adapter = server.tools.get(tool)
        if adapter is None:
            raise ToolError(f"MCP server {server.name!r} no longer offers the tool {tool!r}; its tools are: "
                            f"{', '.join(sorted(server.tools)) or 'none'}")
        try:
            return self._submit(self._call(server, adapter, args, timeout), timeout + 5)
        except _ServerStopped as exc:
            raise ToolError(f"MCP server {server.name!r} stopped answering during {tool!r} ({exc}); the call may not "
                            "have completed. Continue without it, or report it.") from None
        except (FutureTimeout, TimeoutError):
            self._failed(server, f"a call to {tool!r} took longer than {timeout:g} s")
            raise ToolError(f"MCP server {server.name!r} did not answer {tool!r} within {timeout:g} s; the session "
                            "was closed. Try again later or continue without it.") from None
        except Exception as exc:
            from langchain_core.tools import ToolException

            if isinstance(exc, ToolException):  # the tool ran and said it failed (``isError``)
                raise ToolError(f"{tool} (MCP server {server.name!r}) failed: {str(exc)[:2000]}") from None
            if not server.up or _transport_failure(exc):
                self._failed(server, f"it stopped answering: {_describe(exc)}")
                raise ToolError(f"MCP server {server.name!r} stopped answering during {tool!r} ({_describe(exc)}); "
                                "the call may not have completed. Continue without it, or report it.") from None
            raise ToolError(f"{tool} (MCP server {server.name!r}) failed: {_describe(exc)}") from None

    @staticmethod
    async def _call(server: _Server, adapter: BaseTool, args: dict[str, Any], timeout: float) -> Any:
        """The call, unless the server's session ends first (its process died, its connection broke)."""
        call = asyncio.ensure_future(adapter.ainvoke(args))
        assert server.task is not None
        done, _ = await asyncio.wait({call, server.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if call in done:
            return call.result()
        call.cancel()
        if server.task in done:
            raise _ServerStopped(server.error or "its session ended")
        raise TimeoutError

    def close_all(self) -> None:
        """Stop every server (tests, process exit)."""
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
            loop = self._loop
        if loop is None:
            return
        for server in servers:
            if server.stop is not None:
                loop.call_soon_threadsafe(server.stop.set)
        tasks = [s.task for s in servers if s.task is not None]
        if tasks:
            async def wait() -> None:
                await asyncio.wait(tasks, timeout=10)

            try:
                asyncio.run_coroutine_threadsafe(wait(), loop).result(15)
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.debug("MCP servers did not all stop", exc_info=True)


class _ServerStopped(Exception):
    """The server's session ended while a call waited for its answer."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions[:3])
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def _transport_failure(exc: BaseException) -> bool:
    from mcp.shared.exceptions import McpError

    if isinstance(exc, McpError):
        from mcp.types import CONNECTION_CLOSED

        return exc.error.code == CONNECTION_CLOSED
    return isinstance(exc, (OSError, EOFError, ConnectionError)) or type(exc).__module__.startswith(("httpx", "anyio"))


_HUB = _Hub()


def close_all() -> None:
    """Stop every MCP server this process started."""
    _HUB.close_all()


# -- the tools an agent sees ----------------------------------------------------------------------------------


class McpTool(BaseTool):
    """One tool of an MCP server, as an agent's tool: the executor runs it under the policy layer."""

    server_name: str
    remote_name: str
    """The tool's name on its server (the agent's name for it differs only when two would collide)."""
    server: Any = None
    """The hub's ``_Server``."""
    settings: Any = None
    down_reason: str = ""
    """Why the server is unavailable (a stand-in of a server that never started)."""

    def _run(self, ctx: Any = None, run_manager: CallbackManagerForToolRun | None = None, **arguments: Any) -> str:
        server = self.server
        if server is None:  # the stand-in of a server that never started
            raise ToolError(self.down_reason or f"MCP server {self.server_name!r} is unavailable")
        timeout = server.spec.timeout or self.settings.mcp_call_timeout_s
        blocks = _HUB.call(server, self.remote_name, arguments, timeout=timeout,
                           start_timeout=self.settings.mcp_start_timeout_s)
        return _text(blocks)


def _text(blocks: Any) -> str:
    """The call's result as text: text blocks joined; other blocks named, not inlined."""
    if isinstance(blocks, str):
        return blocks
    if isinstance(blocks, tuple):  # (content, artifact)
        blocks = blocks[0]
    parts: list[str] = []
    for block in blocks or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict):
            parts.append(f"[{block.get('type', 'content')} block of {block.get('mime_type') or 'unknown type'} "
                         "omitted]")
        else:
            parts.append(str(block))
    return "\n".join(parts) if parts else json.dumps({"result": None})


@dataclass
class LoadedServers:
    """An agent's MCP tools for one loop, and which servers could not be reached."""

    tools: list[BaseTool] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    """Server name -> why (the server never listed its tools in this process)."""


def load_servers(servers: dict[str, McpServer], *, settings: Settings, taken: Iterable[str]) -> LoadedServers:
    """Start (or reuse) each server and wrap its tools; a tool whose name is ``taken`` (a built-in tool, an
    earlier server's) is offered as ``<server>_<tool>``."""
    loaded = LoadedServers()
    names = set(taken)
    for name, spec in servers.items():
        server = _HUB.server(name, spec)
        try:
            _HUB.start(server, timeout=settings.mcp_start_timeout_s)
        except ToolError as exc:
            if not server.known:
                loaded.unavailable[name] = str(exc)
                stand_in = _sanitise(f"mcp_{name}")
                loaded.tools.append(McpTool(
                    name=stand_in, description=f"MCP server {name!r} is unavailable ({exc}). Calling this returns "
                    "that error; continue without it.", args_schema={"type": "object", "properties": {}},
                    server_name=name, remote_name="", server=None, settings=settings, down_reason=str(exc),
                    metadata={"source": f"mcp:{name}"}))
                names.add(stand_in)
                continue
        for remote in server.known:
            wanted = _sanitise(remote.name)
            agent_name = wanted if wanted not in names else _sanitise(f"{name}_{remote.name}")
            names.add(agent_name)
            loaded.tools.append(McpTool(
                name=agent_name, description=remote.description or f"{remote.name} (MCP server {name})",
                args_schema=dict(remote.inputSchema or {"type": "object", "properties": {}}), server_name=name,
                remote_name=remote.name, server=server, settings=settings, metadata={"source": f"mcp:{name}"}))
    return loaded


def tool_source(tool: BaseTool | None) -> str | None:
    """What serves a tool, for the record: ``mcp:<server>``, or ``builtin`` (``docs_lookup``: the offline docs of
    the installed packages, used when no MCP server serves Context7, DeepWiki or MicrosoftDocs)."""
    if tool is None:
        return None
    source = (tool.metadata or {}).get("source")
    if source:
        return str(source)
    return "builtin:offline-docs" if tool.name == "docs_lookup" else "builtin"
