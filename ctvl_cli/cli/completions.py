"""Generate static bash/zsh/fish completion scripts from the Typer app.

Static scripts complete instantly (no Python start-up, no torch). They are regenerated with
``make completions`` (``python -m ctvl_cli.cli.completions completions``); a test fails when the
committed files are stale.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

FORMATS = ["human", "json", "jsonl", "csv"]
HEADER = "# ctvl {shell} completion, generated from the Typer app by `make completions`. Do not edit.\n"


@dataclass
class Node:
    path: tuple[str, ...]
    help: str = ""
    options: list[str] = field(default_factory=list)  # long and short option names
    value_options: dict[str, list[str] | None] = field(
        default_factory=dict
    )  # option -> choices (None: files)
    children: list[Node] = field(default_factory=list)


def _short_help(cmd) -> str:
    text = (getattr(cmd, "short_help", None) or getattr(cmd, "help", None) or "").strip().splitlines()
    return text[0].strip() if text else ""


def _walk(cmd, path: tuple[str, ...], model_names: list[str]) -> Node:
    node = Node(path=path, help=_short_help(cmd))
    for p in getattr(cmd, "params", []):
        if getattr(p, "param_type_name", "") != "option" or getattr(p, "hidden", False):
            continue
        names = [*p.opts, *getattr(p, "secondary_opts", [])]
        node.options.extend(names)
        if not getattr(p, "is_flag", False):
            ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
            choices = [m.value for m in ann] if isinstance(ann, type) and issubclass(ann, Enum) else None
            if any(n in ("--format", "-f") for n in p.opts):
                values: list[str] | None = FORMATS
            elif any(n in ("--model", "-m") for n in p.opts):
                values = model_names
            elif choices:
                values = [str(getattr(c, "value", c)) for c in choices]
            else:
                values = None
            for n in p.opts:
                node.value_options[n] = values
    node.options.extend(["--help"])
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        if getattr(sub, "hidden", False):
            continue
        node.children.append(_walk(sub, (*path, name), model_names))
    return node


def build_tree() -> Node:
    import typer

    from ctvl_cli.cli.app import app
    from ctvl_cli.registry import list_models

    root = _walk(typer.main.get_command(app), (), list_models())
    if "--version" not in root.options:
        root.options.append("--version")
    return root


def _all(node: Node) -> list[Node]:
    out = [node]
    for c in node.children:
        out.extend(_all(c))
    return out


def bash_script(root: Node) -> str:
    lines = [
        HEADER.format(shell="bash"),
        "_ctvl() {",
        '    local cur prev path="" i w',
        '    cur="${COMP_WORDS[COMP_CWORD]}"',
        '    prev="${COMP_WORDS[COMP_CWORD-1]}"',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        w="${COMP_WORDS[i]}"',
        '        case "$path/$w" in',
    ]
    for n in _all(root)[1:]:
        lines.append(
            f'            "{"/".join(("", *n.path[:-1])) if len(n.path) > 1 else ""}/{n.path[-1]}") path="$path/{n.path[-1]}" ;;'
        )
    lines += ["        esac", "    done", '    local words="" values="" files=0', '    case "$path" in']
    for n in _all(root):
        key = "/".join(("", *n.path)) if n.path else ""
        words = " ".join([c.path[-1] for c in n.children] + n.options)
        lines.append(f'        "{key}") words="{words}"')
        cases = []
        for opt, vals in n.value_options.items():
            cases.append(
                f"                {opt}) "
                + (f'values="{" ".join(vals)}" ;;' if vals is not None else "files=1 ;;")
            )
        if cases:
            lines += ['            case "$prev" in', *cases, "            esac"]
        lines.append("            ;;")
    lines += [
        "    esac",
        '    if [[ -n "$values" ]]; then COMPREPLY=($(compgen -W "$values" -- "$cur")); return 0; fi',
        '    if [[ $files -eq 1 ]]; then COMPREPLY=($(compgen -f -- "$cur")); return 0; fi',
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        '    if [[ ${#COMPREPLY[@]} -eq 0 && "$cur" != -* ]]; then COMPREPLY=($(compgen -f -- "$cur")); fi',
        "    return 0",
        "}",
        "complete -o default -o filenames -F _ctvl ctvl",
        "",
    ]
    return "\n".join(lines)


def _q(s: str) -> str:
    return s.replace("'", "").replace(":", "\\:").replace("[", "(").replace("]", ")")


def zsh_script(root: Node) -> str:
    lines = [
        "#compdef ctvl",
        HEADER.format(shell="zsh"),
        "_ctvl() {",
        '    local path="" w i',
        "    local -a items values",
        "    for ((i = 2; i < CURRENT; i++)); do",
        '        w="${words[i]}"',
        '        case "$path/$w" in',
    ]
    for n in _all(root)[1:]:
        lines.append(
            f'            "{"/".join(("", *n.path[:-1])) if len(n.path) > 1 else ""}/{n.path[-1]}") path="$path/{n.path[-1]}" ;;'
        )
    lines += ["        esac", "    done", '    local prev="${words[CURRENT-1]}"', '    case "$path" in']
    for n in _all(root):
        key = "/".join(("", *n.path)) if n.path else ""
        items = [f"'{c.path[-1]}:{_q(c.help)}'" for c in n.children] + [f"'{o}'" for o in n.options]
        lines.append(f'        "{key}")')
        cases = []
        for opt, vals in n.value_options.items():
            cases.append(
                f"                {opt}) "
                + (
                    f"values=({' '.join(vals)}); compadd -a values; return ;;"
                    if vals is not None
                    else "_files; return ;;"
                )
            )
        if cases:
            lines += ['            case "$prev" in', *cases, "            esac"]
        lines += [f"            items=({' '.join(items)})", "            ;;"]
    lines += ["    esac", "    _describe 'ctvl' items", "    _files", "}", '_ctvl "$@"', ""]
    return "\n".join(lines)


def fish_script(root: Node) -> str:
    lines = [HEADER.format(shell="fish"), "complete -c ctvl -f"]
    for n in _all(root):
        if n.path:
            cond = " ; and ".join(f"__fish_seen_subcommand_from {p}" for p in n.path)
        else:
            cond = "__fish_use_subcommand"
        for c in n.children:
            parent_cond = cond if n.path else "__fish_use_subcommand"
            lines.append(f"complete -c ctvl -n '{parent_cond}' -a {c.path[-1]} -d '{_q(c.help)}'")
        if not n.path:
            continue
        for o in n.options:
            if not o.startswith("--"):
                continue
            vals = n.value_options.get(o, "flag")
            spec = f"-l {o[2:]}"
            if vals == "flag":
                lines.append(f"complete -c ctvl -n '{cond}' {spec}")
            elif vals is None:
                lines.append(f"complete -c ctvl -n '{cond}' {spec} -r -F")
            else:
                lines.append(f"complete -c ctvl -n '{cond}' {spec} -x -a '{' '.join(vals)}'")
        if not n.children:
            lines.append(f"complete -c ctvl -n '{cond}' -F")
    return "\n".join(lines) + "\n"


SCRIPTS = {
    "bash": ("ctvl.bash", bash_script),
    "zsh": ("_ctvl", zsh_script),
    "fish": ("ctvl.fish", fish_script),
}


def render_all() -> dict[str, str]:
    root = build_tree()
    return {fname: fn(root) for fname, fn in SCRIPTS.values()}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "completions")
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in render_all().items():
        (out / fname).write_text(text)
        sys.stderr.write(f"wrote {out / fname}\n")


if __name__ == "__main__":
    main()
