"""The documentation points at things that exist.

* every relative link in README.md and docs/*.md names an existing file, and a ``#anchor`` into a markdown
  file names one of its headings (GitHub's slugs);
* every ``--option`` shown for one of the project's programs (the ``flallm-*`` CLIs, ``preprocess/*.py``)
  and for ``fairseq-train`` / ``fairseq-generate`` (fairseq's parser with the options of the task, model,
  criterion, optimizer, scheduler and scorer the command names, as ``flallm-help`` builds it) is an option of
  that program's parser.

Where options are read: shell code blocks (continuation lines joined; a program may follow ``python``,
``torchrun ... -m fairseq_cli.train``, ``srun``, ``sh -c '...'``), the leading option of a comment line
that starts with an option (``#   --rows ...`` after a command: that command's program), and inline code
spans that start with a program name. Options in prose without a program name are not attributed.
Parsers are built in-process (no subprocess).
"""
import argparse
import glob
import os
import re
import shlex
from functools import lru_cache
from unittest import mock

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))

FLALLM_CLIS = {
    "flallm-extract-features": "flallm_plugin.cli.extract_features",
    "flallm-score": "flallm_plugin.cli.score",
    "flallm-export": "flallm_plugin.cli.export",
    "flallm-translate": "flallm_plugin.cli.translate",
    "flallm-experiment": "flallm_tools.cli.experiment",
    "flallm-help": "flallm_plugin.cli.help",
}
FAIRSEQ = {"fairseq-train": "train", "fairseq-generate": "generate",
           "fairseq_cli.train": "train", "fairseq_cli.generate": "generate"}
PREPROCESS = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "preprocess", "*.py"))}
COMMAND_END = {"|", ">", ">>", "2>", "&&", "||", ";", "&"}
# fairseq options whose value selects a registry entry (and so the options it adds)
FAIRSEQ_CHOICES = ("task", "arch", "criterion", "optimizer", "lr-scheduler", "scoring")


# ---------------------------------------------------------------------------------------------------------
# markdown


def split_code(text):
    """(prose with code blocks blanked, [(language, block text)]); line numbers are kept."""
    prose, blocks, lines, block, lang = [], [], text.split("\n"), None, None
    for line in lines:
        m = re.match(r"^\s*(```|~~~)\s*([\w+-]*)", line)
        if block is None and m:
            block, lang = [], m.group(2).lower()
            prose.append("")
        elif block is not None and re.match(r"^\s*(```|~~~)\s*$", line):
            blocks.append((lang, "\n".join(block)))
            block = None
            prose.append("")
        elif block is not None:
            block.append(line)
            prose.append("")
        else:
            prose.append(line)
    return "\n".join(prose), blocks


def github_slugs(text):
    """The anchors GitHub gives the headings of a markdown text."""
    prose, _ = split_code(text)
    seen, slugs = {}, set()
    for line in prose.split("\n"):
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = slugify(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        slugs.add(slug if n == 0 else f"{slug}-{n}")
    return slugs


def slugify(heading):
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    heading = heading.strip().lower()
    heading = re.sub(r"[^\w\- ]", "", heading)  # punctuation (backticks, colons, brackets ...) goes
    return heading.replace(" ", "-")


def links(text):
    """[(target, line number)] of the inline links and images outside code."""
    prose, _ = split_code(text)
    prose = re.sub(r"`[^`\n]*`", lambda m: " " * len(m.group(0)), prose)  # code spans hold no links
    out = []
    for m in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose):
        out.append((m.group(1), prose.count("\n", 0, m.start()) + 1))
    return out


def broken_links(path, text=None):
    """Messages for the relative links of the markdown file ``path`` that do not resolve."""
    if text is None:
        text = open(path, encoding="utf-8").read()
    bad = []
    for target, line in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        where = f"{os.path.relpath(path, REPO)}:{line}: {target}"
        if not os.path.exists(dest):
            bad.append(f"{where}: {os.path.relpath(dest, REPO)} does not exist")
        elif anchor and dest.endswith(".md"):
            dest_text = text if dest == path else open(dest, encoding="utf-8").read()
            if anchor not in github_slugs(dest_text):
                bad.append(f"{where}: no heading with the anchor #{anchor} in {os.path.relpath(dest, REPO)}")
    return bad


# ---------------------------------------------------------------------------------------------------------
# commands


def program_of(token):
    """The program a shell token names, or None."""
    if token in FLALLM_CLIS or token in FAIRSEQ:
        return token
    if token.startswith("preprocess/") and os.path.basename(token) in PREPROCESS:
        return "preprocess/" + os.path.basename(token)
    return None


def commands(text):
    """[(program, [tokens after it], where)] for the programs run in a markdown text."""
    prose, blocks = split_code(text)
    out = []
    for lang, block in blocks:
        if lang not in ("", "bash", "sh", "shell", "console"):
            continue
        block = re.sub(r"\\\n", " ", block)
        last = None
        for line in block.split("\n"):
            stripped = line.strip()
            if stripped.startswith("#"):
                # "#   --rows a,b  a subset": the leading option, for the command above
                m = re.match(r"#\s*(--[A-Za-z][\w-]*)", stripped)
                if m and last is not None:
                    out.append((last, [m.group(1)], line.strip()))
                continue
            found = commands_in(line)
            out.extend(found)
            if found:
                last = found[-1][0]
    for m in re.finditer(r"`([^`]+)`", prose):
        span = m.group(1).replace("\n", " ")
        first = span.split()[0] if span.split() else ""
        if program_of(first) or (first == "python" and len(span.split()) > 1 and program_of(span.split()[1])):
            out.extend(commands_in(span))
    return out


def commands_in(line):
    """The program invocations in one shell command line (also inside ``sh -c '...'``)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        if any(program_of(t) for t in line.split()):
            raise AssertionError(f"cannot parse this command line: {line}")
        return []
    out, i = [], 0
    while i < len(tokens):
        prog = program_of(tokens[i])
        if prog is None:
            if " " in tokens[i] and any(program_of(t) for t in tokens[i].split()):
                out.extend(commands_in(tokens[i]))  # sh -c 'exec fairseq-train ...'
            i += 1
            continue
        j = i + 1
        while j < len(tokens) and tokens[j] not in COMMAND_END:
            j += 1
        out.append((prog, tokens[i + 1:j], line.strip()))
        i = j
    return out


# ---------------------------------------------------------------------------------------------------------
# parsers


class _Parser(Exception):
    def __init__(self, parser):
        self.parser = parser


def parser_from_main(main):
    """The argparse parser a script's ``main()`` builds (its ``parse_args`` raises before it runs)."""
    def grab(self, *args, **kwargs):
        raise _Parser(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", grab):
        try:
            main([])
        except _Parser as got:
            return got.parser
    raise AssertionError(f"{main} did not build an argparse parser")


@lru_cache(maxsize=None)
def project_parser(prog):
    import importlib

    if prog in FLALLM_CLIS:
        return importlib.import_module(FLALLM_CLIS[prog]).get_parser()
    module = importlib.import_module(os.path.basename(prog)[: -len(".py")])  # preprocess/ is on sys.path
    if hasattr(module, "get_parser"):
        return module.get_parser()
    return parser_from_main(module.main)


@lru_cache(maxsize=None)
def fairseq_parser(command, choices):
    from flallm_plugin.cli.help import fairseq_parser as build

    choices = dict(choices)
    task = choices.pop("task", None) or "sign_translation"
    arch = choices.pop("arch", None)
    return build(command, task, arch, **{k.replace("-", "_"): v for k, v in choices.items()})


def parser_for(prog, args):
    if prog in FAIRSEQ:
        choices = {}
        for k, tok in enumerate(args):
            name, eq, value = tok[2:].partition("=")
            if tok.startswith("--") and name in FAIRSEQ_CHOICES:
                value = value if eq else (args[k + 1] if k + 1 < len(args) else None)
                if value and not value.startswith("-") and re.match(r"^[\w.-]+$", value):
                    choices[name] = value
        if FAIRSEQ[prog] == "train" and "arch" not in choices:
            # a partial command ("fairseq-train DATA ... --batch-size 2"): fairseq adds no options without an
            # architecture, so accept those of any of the plugin's two stages
            return [fairseq_parser("train", tuple(sorted({**choices, "arch": arch}.items())))
                    for arch in ("light_t", "sign_mbart_large")]
        return [fairseq_parser(FAIRSEQ[prog], tuple(sorted(choices.items())))]
    return [project_parser(prog)]


def unknown_options(prog, args):
    """The ``--options`` in ``args`` that ``prog``'s parser does not have."""
    known = {}
    for parser in parser_for(prog, args):
        known = {**parser._option_string_actions, **known}
    bad, k = [], 0
    while k < len(args):
        tok = args[k]
        k += 1
        if not tok.startswith("--") or tok == "--":
            continue
        name, eq, _ = tok.partition("=")
        action = known.get(name)
        if action is None:
            bad.append(name)
            continue
        if eq or action.nargs == 0:
            continue
        if action.nargs in (None, 1, "?"):
            if action.nargs != "?" or (k < len(args) and not args[k].startswith("--")):
                k += 1  # its value, even one that starts with dashes ("--extra-stage1-args --amp")
        elif action.nargs in ("*", "+", argparse.REMAINDER):
            while k < len(args) and not args[k].startswith("--"):
                k += 1
        else:
            k += int(action.nargs)
    return bad


# ---------------------------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("path", DOCS, ids=lambda p: os.path.relpath(p, REPO))
def test_links_resolve(path):
    assert broken_links(path) == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: os.path.relpath(p, REPO))
def test_options_exist(path):
    text = open(path, encoding="utf-8").read()
    bad = []
    for prog, args, where in commands(text):
        for name in unknown_options(prog, args):
            bad.append(f"{prog} has no {name}: {where}")
    assert bad == []


def test_readme_is_a_door():
    """The README stays short (details go to docs/) and shows the two commands (.ci/run runs make test)."""
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    assert len(text.splitlines()) <= 200
    assert "make demo" in text and "make test" in text


def test_every_program_is_checked_somewhere():
    """The extractor finds the commands the README and docs show (an extractor that finds none passes
    everything)."""
    progs = set()
    for path in DOCS:
        progs |= {prog for prog, _, _ in commands(open(path, encoding="utf-8").read())}
    assert {"fairseq-train", "fairseq-generate", "flallm-extract-features", "flallm-score", "flallm-export",
            "flallm-translate", "flallm-experiment", "flallm-help", "preprocess/prep_phoenix14t.py",
            "preprocess/trim_mbart.py"} <= progs


def test_checks_can_fail(tmp_path):
    """Made-up markdown: a mistyped option of a project CLI, of a preprocessor, of a model option in
    fairseq-train, and links to a missing file and a missing heading are all reported."""
    md = "\n".join([
        "# Title: one `thing` (here)", "", "## Title: one `thing` (here)", "",
        "[ok](#title-one-thing-here) [ok2](#title-one-thing-here-1) [web](https://example.org/x.md)",
        "[missing](nowhere.md) [bad anchor](#no-such-heading)", "",
        "```bash",
        "flallm-translate MODEL clip.mp4 --beam 5 --beem 5 \\",
        "  --json",
        "python preprocess/prep_phoenix14t.py --data-root D --out-dir O --resise 256",
        "#   --vocab-size 100  fine   ",
        "#   --no-such-thing  reported",
        "fairseq-train D --user-dir flallm_plugin --task sign_translation --arch light_t_tiny \\",
        "  --visual-backbone-weights none --light-t-layerz 3",
        "flallm-experiment --data D --extra-stage1-args \"--amp\" --seeds 2",
        "```", "",
        "Inline: `flallm-score --generate-output g.txt --no-such-option`, not a command: `--beem`.",
    ])
    path = tmp_path / "doc.md"
    path.write_text(md, encoding="utf-8")
    assert sorted(github_slugs(md)) == ["title-one-thing-here", "title-one-thing-here-1"]
    assert [b.split(": ", 2)[1] for b in broken_links(str(path), md)] == ["nowhere.md", "#no-such-heading"]
    found = [(prog, name) for prog, args, _ in commands(md) for name in unknown_options(prog, args)]
    assert found == [
        ("flallm-translate", "--beem"),
        ("preprocess/prep_phoenix14t.py", "--resise"),
        ("preprocess/prep_phoenix14t.py", "--no-such-thing"),
        ("fairseq-train", "--light-t-layerz"),
        ("flallm-score", "--no-such-option"),
    ]
