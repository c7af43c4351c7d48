"""python -m labkit.services serve|start|stop|status"""

import argparse

from labkit.services import daemon
from labkit.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.services")
    parser.add_argument("command", choices=["serve", "start", "stop", "status"])
    parser.add_argument("--port", type=int, default=0, help="serve only: port to bind")
    parser.add_argument("--project", default=daemon.LOCAL_PROJECT,
                        help="serve/start: the local project's id")
    args = parser.parse_args()
    workspace = Workspace.from_env()
    if args.command == "serve":
        daemon.serve(workspace, args.port, args.project)
    elif args.command == "start":
        print(f"http://127.0.0.1:{daemon.ensure_running(workspace, args.project)}")
    elif args.command == "stop":
        print("stopped" if daemon.stop(workspace) else "not running")
    else:
        port = daemon.running_port(workspace)
        print(f"running on http://127.0.0.1:{port}" if port else "not running")


if __name__ == "__main__":
    main()
