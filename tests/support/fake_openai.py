"""A local chat model speaking OpenAI's chat-completions protocol, with a fixed latency (tests and benchmarks).

It plays every agent of a mission from the request alone (no state between requests): the lead, in each step,
lists the workspace, hands off once in the steps of :data:`HANDOFF_STEPS`, then finishes the step; a
sub-agent submits its result at once. Each answer waits ``latency`` seconds first (an ``asyncio.sleep``: the
server holds thousands of waiting requests on one thread), as a hosted model's would.

    python -m tests.support.fake_openai [--latency 0.5]     # prints "port N", serves on 127.0.0.1 until killed

``ORCH_MODEL=openai:fake-model ORCH_MODEL_BASE_URL=http://127.0.0.1:N/v1 ORCH_MODEL_API_KEY=fake`` points the
agents at it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["HANDOFF_STEPS", "FakeOpenAI", "answer", "answers_per_mission", "fake_openai"]

HANDOFF_STEPS: dict[str, str] = {"align": "data-scientist", "package": "security-expert"}
"""Steps in which the lead delegates once, and to whom."""

_STEP = re.compile(r"## Procedure step: (\w+)")
_ROOT = Path(__file__).resolve().parents[2]


def answers_per_mission(steps: int = 7) -> int:
    """Model answers one mission takes, one after another: each step's lead lists files and finishes
    (2 answers), a handoff adds the lead's call and the sub-agent's result (2 more)."""
    return 2 * steps + 2 * len(HANDOFF_STEPS)


def _call(name: str, **args: Any) -> dict[str, Any]:
    return {"id": f"call_{uuid.uuid4().hex[:16]}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message for one chat-completions request (pure: the script reads the request only)."""
    messages = body.get("messages") or []
    tools = {tool["function"]["name"] for tool in body.get("tools") or [] if tool.get("type") == "function"}
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    turn = sum(1 for m in messages[last_user + 1:] if m.get("role") == "assistant")
    if "submit_result" in tools:  # a sub-agent: its brief is the conversation's only user message
        return {"role": "assistant", "content": None,
                "tool_calls": [_call("submit_result", summary="Reviewed; nothing blocks the plan.", findings=[],
                                     artifacts=[], status="completed")]}
    text = str(messages[last_user].get("content") or "") if last_user >= 0 else ""
    match = _STEP.search(text)
    step = match.group(1) if match else ""
    script: list[dict[str, Any]] = []
    if "list_files" in tools:
        script.append(_call("list_files", path="."))
    peer = HANDOFF_STEPS.get(step)
    if peer and f"transfer_to_{peer.replace('-', '_')}" in tools:
        script.append(_call(f"transfer_to_{peer.replace('-', '_')}", task=f"Review the {step} step's plan",
                            context="", expected_output="findings"))
    script.append(_call("finish_step", status="done", summary=f"{step or 'step'} done", reason=""))
    return {"role": "assistant", "content": None, "tool_calls": [script[min(turn, len(script) - 1)]]}


def _completion(body: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages") or []) // 4
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 20, "total_tokens": prompt + 20}}


def make_app(latency: float):
    """The ASGI app: ``POST /v1/chat/completions``, ``GET /stats`` (answers so far, most at once), ``/healthz``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    stats = {"answers": 0, "waiting": 0, "most_waiting": 0}

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("stream"):
            return JSONResponse({"error": {"message": "streaming is not scripted", "type": "invalid_request_error"}},
                                status_code=400)
        stats["waiting"] += 1
        stats["most_waiting"] = max(stats["most_waiting"], stats["waiting"])
        try:
            await asyncio.sleep(latency)
        finally:
            stats["waiting"] -= 1
        stats["answers"] += 1
        return JSONResponse(_completion(body, answer(body)))

    async def get_stats(_: Request) -> JSONResponse:
        return JSONResponse({**stats, "latency": latency})

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                             Route("/stats", get_stats), Route("/healthz", healthz)])


@dataclass
class FakeOpenAI:
    """A running fake model server (in its own process, so its work does not count against the runner's)."""

    url: str
    latency: float
    process: subprocess.Popen[str]

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/stats", timeout=5).json()

    def env(self) -> dict[str, str]:
        """The settings that point every agent at this server."""
        return {"ORCH_MODEL": "openai:fake-model", "ORCH_MODEL_BASE_URL": self.base_url, "ORCH_MODEL_API_KEY": "fake"}


@contextmanager
def fake_openai(*, latency: float = 0.5) -> Iterator[FakeOpenAI]:
    """Start the server on a free loopback port for the block."""
    process = subprocess.Popen([sys.executable, "-m", "tests.support.fake_openai", "--latency", str(latency)],
                               cwd=_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("port "):
            raise RuntimeError(f"the fake model server did not start (exit code {process.poll()})")
        server = FakeOpenAI(url=f"http://127.0.0.1:{int(line.split()[1])}", latency=latency, process=process)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{server.url}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds before each answer")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"port {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(make_app(args.latency), log_level="warning", access_log=False, backlog=2048,
                            timeout_keep_alive=60)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
