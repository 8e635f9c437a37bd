"""`carecoord-contracts`: regenerate, check and release the published contract.

carecoord-contracts generate          write docs/asyncapi.json, docs/schemas/, docs/events.md
carecoord-contracts generate --check  fail if the committed documents are stale
carecoord-contracts compat            fail if the code breaks the last released snapshot
carecoord-contracts release 1.1.0     snapshot the current schemas as a release
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import HISTORY
from .catalog import markdown
from .compat import breaking_changes, latest_release, missing_upcasters, snapshot
from .spec import asyncapi, dumps, message_key, standalone_schema


def documents() -> dict[str, str]:
    """Relative path under docs/ -> content, for everything generated."""
    docs = {"asyncapi.json": dumps(asyncapi()), "events.md": markdown()}
    for event_type, version in sorted(HISTORY):
        docs[f"schemas/{message_key(event_type, version)}.json"] = dumps(standalone_schema(event_type, version))
    return docs


def stale(docs_dir: Path) -> list[str]:
    expected = documents()
    problems = [p for p, text in expected.items() if not (docs_dir / p).exists() or (docs_dir / p).read_text() != text]
    extra = [
        str(p.relative_to(docs_dir))
        for p in (docs_dir / "schemas").glob("*.json")
        if str(p.relative_to(docs_dir)) not in expected
    ]
    return problems + [f"{p} (no longer generated)" for p in extra]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="carecoord-contracts", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--check", action="store_true")
    sub.add_parser("compat")
    rel = sub.add_parser("release")
    rel.add_argument("version", help="semantic version, e.g. 1.1.0")
    args = parser.parse_args(argv)
    releases = args.docs / "contract-releases"

    if args.command == "generate":
        if args.check:
            problems = stale(args.docs)
            for p in problems:
                print(f"stale: {args.docs / p}")
            if problems:
                print("run `make contracts` and commit the result")
            return 1 if problems else 0
        for path, text in documents().items():
            target = args.docs / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        for p in stale(args.docs):  # schemas of versions no longer generated
            (args.docs / p.split(" ")[0]).unlink()
        print(f"wrote {len(documents())} documents under {args.docs}/")
        return 0
    if args.command == "compat":
        found = latest_release(releases)
        if found is None:
            print(f"no release snapshot in {releases}/")
            return 1
        name, released = found
        problems = breaking_changes(released, snapshot()) + missing_upcasters()
        for p in problems:
            print(f"breaking: {p}")
        print(f"{len(problems)} breaking change(s) against release {name}")
        return 1 if problems else 0
    if args.command == "release":
        releases.mkdir(parents=True, exist_ok=True)
        (releases / f"{args.version}.json").write_text(json.dumps(snapshot(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {releases / (args.version + '.json')}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
