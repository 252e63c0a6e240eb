"""Run code in a lab kernel over the lab's websocket API; print what the kernel printed.

Usage: python kernel_says.py LAB_BASE_URL TOKEN KERNEL_ID CODE

Uses tornado, which JupyterLab's environment has. Exits non-zero when the kernel reports an
error or prints nothing within 60 s.
"""
import asyncio
import json
import sys
import uuid

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


async def main(base, token, kernel_id, code):
    url = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    msg_id = uuid.uuid4().hex
    connection.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False},
    }))
    printed = []
    while True:
        message = json.loads(await connection.read_message())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream" and message["content"]["name"] == "stdout":
            printed.append(message["content"]["text"])
        elif kind == "error":
            print("\n".join(message["content"]["traceback"]), file=sys.stderr)
            return 1
        elif kind == "status" and message["content"]["execution_state"] == "idle":
            break
    print("".join(printed), end="")
    return 0 if printed else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(asyncio.wait_for(main(*sys.argv[1:5]), 60)))
