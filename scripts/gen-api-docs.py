#!/usr/bin/env python3
"""Generate docs/api.md from the docstrings of sipsimple's public modules.

    python scripts/gen-api-docs.py            # write docs/api.md
    python scripts/gen-api-docs.py --check    # exit 1 when docs/api.md is not current
    python scripts/gen-api-docs.py -o -       # print to stdout

It imports the packages listed in ``ROOTS`` and every submodule under them (the
compiled core must be built: ``make build``), and writes for each module its
docstring (where the notifications it posts are listed with their data), its
public classes with their public methods, properties and signatures, and its
public functions. A first section indexes every notification named in a module
docstring: its name, the module(s) documenting it and that docstring's entry.

The output depends only on the sources: no addresses, no paths of this machine,
modules and members in a fixed order.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "api.md"
ROOTS = [
    "sipsimple.core",
    "sipsimple.engine",
    "sipsimple.session",
    "sipsimple.account",
    "sipsimple.configuration",
    "sipsimple.msrp",
    "sipsimple.payloads",
    "sipsimple.notification",
    "sipsimple.streams",
]
# a notification name in a docstring: ``SCSessionDidStart``, ``SIPAccountRegistrationDidFail``, ...
NOTIFICATION = re.compile(r"``?((?:SC[A-Z][a-z]\w*)|(?:[A-Z][A-Za-z0-9]*(?:Did|Will|Got|Changed|New|Was)[A-Z]\w*))``?")
PLACEHOLDER = re.compile(r"^(PREFIX|NAME|X)[A-Z]")  # a pattern like ``PREFIXDidEnd``, not a name
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def modules() -> list[ModuleType]:
    found: list[ModuleType] = []
    for name in ROOTS:
        module = importlib.import_module(name)
        found.append(module)
        if hasattr(module, "__path__"):
            subs = sorted(info.name for info in pkgutil.walk_packages(module.__path__, name + "."))
            found += [importlib.import_module(sub) for sub in subs]
    return found


def clean(text: str) -> str:
    text = ADDRESS.sub("", text)
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        text = text.replace(home, "~")
    return text.replace(str(ROOT), "<source>")


def split_embedded_signature(name: str, doc: str) -> tuple[str | None, str]:
    """Cython's embedsignature puts ``Name(args)`` (or ``Class.name(args)``) first in the docstring."""
    first, _, rest = doc.partition("\n")
    match = re.match(rf"^(?:\w+\.)*{re.escape(name)}(\(.*\))(?:\s*->\s*.+)?$", first.strip())
    if match:
        return match.group(0)[match.group(0).index("("):], rest.strip("\n")
    return None, doc


class _Raw:
    """An annotation kept as text (``from __future__ import annotations``), shown without quotes."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def format_signature(sig: inspect.Signature, with_return: bool = True) -> str:
    def raw(annotation: object) -> object:
        return _Raw(annotation) if isinstance(annotation, str) else annotation

    params = [p.replace(annotation=raw(p.annotation)) for p in sig.parameters.values()]
    returns = raw(sig.return_annotation) if with_return else inspect.Signature.empty
    return str(sig.replace(parameters=params, return_annotation=returns))


def signature(obj: object, name: str, with_return: bool = True) -> tuple[str, str]:
    """(signature text, docstring without an embedded signature); the text is "" when unknown."""
    doc = inspect.getdoc(obj) or ""
    embedded, doc = split_embedded_signature(name, doc)
    try:
        text = format_signature(inspect.signature(obj), with_return)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        text = embedded or ""
    return clean(text), doc


def defined_in(module: ModuleType, obj: object) -> bool:
    return getattr(obj, "__module__", None) == module.__name__


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return sorted(set(names), key=lambda n: (n.lower(), n))


def quote(doc: str) -> str:
    """A docstring as Markdown text: as written (it is reST-like; ``code`` reads the same)."""
    return clean(doc).strip()


def members(cls: type) -> list[tuple[str, str, object]]:
    """(kind, name, object) of the public methods and properties a class defines itself."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property) or inspect.isdatadescriptor(value) and not inspect.isclass(value):
            out.append(("property", name, value))
        elif isinstance(value, staticmethod | classmethod):
            out.append(("method", name, value.__func__))
        elif callable(value) and not inspect.isclass(value):
            out.append(("method", name, getattr(cls, name)))
    return sorted(out, key=lambda m: (m[0] != "method", m[1]))


def document_class(lines: list[str], module: ModuleType, name: str, cls: type) -> None:
    init = cls.__dict__.get("__init__")
    sig, doc = signature(cls, name, with_return=False)
    if not sig and init is not None and inspect.isfunction(init):
        sig = clean(format_signature(inspect.signature(init), False)).replace("(self, ", "(").replace("(self)", "()")
    if issubclass(cls, BaseException) and sig in ("(*args, **kwargs)", "(*args)"):
        sig = ""
    bases = [b.__name__ for b in cls.__bases__ if b is not object]
    lines.append(f"### class `{name}{sig}`" + (f" ({', '.join(bases)})" if bases else ""))
    lines.append("")
    if doc:
        lines += [quote(doc), ""]
    for kind, member, value in members(cls):
        if kind == "property":
            pdoc = clean(split_embedded_signature(member, inspect.getdoc(value) or "")[1].strip())
            lines.append(f"- property `{member}`" + (f": {pdoc.splitlines()[0]}" if pdoc else ""))
        else:
            msig, mdoc = signature(value, member)
            lines.append(f"- `{member}{msig}`" + (":" if mdoc else ""))
            if mdoc:
                lines += ["", *("  " + line if line else "" for line in quote(mdoc).splitlines()), ""]
    if lines[-1] != "":
        lines.append("")


def document_module(lines: list[str], module: ModuleType) -> None:
    lines += [f"## {module.__name__}", ""]
    if module.__doc__:
        lines += [quote(inspect.cleandoc(module.__doc__)), ""]
    names = public_names(module)
    classes = [(n, getattr(module, n)) for n in names
               if inspect.isclass(getattr(module, n, None)) and defined_in(module, getattr(module, n))]
    functions = [(n, getattr(module, n)) for n in names
                 if callable(getattr(module, n, None)) and not inspect.isclass(getattr(module, n))
                 and defined_in(module, getattr(module, n))]
    elsewhere = [n for n in names if hasattr(module, n) and not defined_in(module, getattr(module, n))
                 and (inspect.isclass(getattr(module, n)) or callable(getattr(module, n)))
                 and getattr(getattr(module, n), "__module__", "").startswith("sipsimple")]
    if elsewhere:
        refs = [f"`{n}` ({getattr(module, n).__module__})" for n in elsewhere]
        lines += ["Exports: " + ", ".join(refs) + ".", ""]
    for name, cls in classes:
        if cls.__name__ != name and getattr(module, cls.__name__, None) is cls:
            lines += [f"### class `{name}`", "", f"Another name of `{cls.__name__}`.", ""]
            continue
        document_class(lines, module, name, cls)
    for name, func in functions:
        sig, doc = signature(func, name)
        lines.append(f"### `{name}{sig}`")
        lines.append("")
        if doc:
            lines += [quote(doc), ""]


def entries(doc: str) -> list[str]:
    """A docstring's bullets and paragraphs, each on one line."""
    out: list[str] = []
    current: list[str] = []
    for raw in inspect.cleandoc(doc).splitlines():
        line = raw.strip()
        if not line or re.match(r"^[-*] ", line):
            if current:
                out.append(" ".join(current))
            current = [line[2:]] if line else []
        else:
            current.append(line)
    if current:
        out.append(" ".join(current))
    return out


def notifications(mods: list[ModuleType]) -> dict[str, list[tuple[str, str]]]:
    """name -> [(module, docstring entry naming it)], in module order."""
    found: dict[str, list[tuple[str, str]]] = {}
    for module in mods:
        for entry in entries(module.__doc__ or ""):
            for name in dict.fromkeys(NOTIFICATION.findall(entry)):
                if PLACEHOLDER.match(name):
                    continue
                if all(m != module.__name__ for m, _ in found.get(name, [])):
                    found.setdefault(name, []).append((module.__name__, entry))
    return dict(sorted(found.items()))


def cell(text: str) -> str:
    return clean(text).replace("|", "\\|")


def anchor(module: str) -> str:
    return "#" + module.replace(".", "")


def generate() -> str:
    mods = modules()
    lines = [
        "# sipsimple API reference",
        "",
        "Generated from the docstrings by `scripts/gen-api-docs.py`; do not edit by hand.",
        "Regenerate with `python scripts/gen-api-docs.py` (after `make build`);",
        "`tests/test_docs.py` fails when this file is out of date.",
        "",
        "Every module below lists, in its docstring, the notifications it posts and their data;",
        "the index gathers them. All notifications carry a `timestamp` and are delivered",
        "synchronously on the posting thread (see docs/architecture.md).",
        "",
        "## Modules",
        "",
    ]
    lines += [f"- [{m.__name__}]({anchor(m.__name__)})" + (f": {cell(first_line(m))}" if m.__doc__ else "")
              for m in mods]
    lines += ["", "## Notifications", "", "| Notification | Documented in | Entry |", "|---|---|---|"]
    for name, where in notifications(mods).items():
        modules_cell = ", ".join(f"[{m}]({anchor(m)})" for m, _ in where)
        lines.append(f"| `{name}` | {modules_cell} | {cell(where[0][1])} |")
    lines.append("")
    for module in mods:
        document_module(lines, module)
    while lines[-1] == "":
        lines.pop()
    return "\n".join(line.rstrip() for line in lines) + "\n"


def first_line(module: ModuleType) -> str:
    return inspect.cleandoc(module.__doc__ or "").splitlines()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(OUTPUT), help="file to write, - for stdout")
    parser.add_argument("--check", action="store_true", help="only compare with the file; exit 1 if it differs")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    text = generate()
    if args.check:
        current = Path(args.output).read_text() if Path(args.output).exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run python scripts/gen-api-docs.py", file=sys.stderr)
            return 1
        return 0
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
