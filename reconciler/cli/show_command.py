"""`cnm show PLANFILE`: a plan saved by `cnm plan -out`, rendered again (text, JSON,
markdown) without the kernel, as `cnm plan` printed it when it was saved."""

from __future__ import annotations

import argparse
import sys

from reconciler.cli.parser import Commands


def register(commands: Commands) -> None:
    parser = commands.add("show", cmd_show, summary="render a plan saved by `cnm plan -out`")
    # Set here, not as add()'s keywords, so that this works with either Commands.add.
    parser.description = ("Render a plan saved by `cnm plan -out` again, as `cnm plan`\n"
                          "printed it, without the kernel and without privileges.")
    parser.epilog = ("example:\n  cnm plan -f manifests/ -out plan.json\n"
                     "  cnm show plan.json -o markdown > comment.md")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("planfile", metavar="PLANFILE", help="a plan saved by `cnm plan -out`")
    parser.add_argument("-o", "--output", choices=["text", "json", "markdown"], default="text",
                        help="text (default), the JSON plan document, or a markdown comment")


def cmd_show(args: argparse.Namespace) -> int:
    from reconciler import savedplan
    from reconciler.render import render_json, render_markdown, render_text

    plan = savedplan.saved_plan(savedplan.read_saved_plan(args.planfile), args.planfile)
    renderers = {"json": render_json, "markdown": render_markdown}
    sys.stdout.write(renderers.get(args.output, render_text)(plan))
    return 0
