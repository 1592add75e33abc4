"""UTF-8 text and delimited tables with errors that name the file and the line."""
import codecs
import csv
import os
from typing import Dict, List, Sequence, Tuple

from flallm_plugin.data.errors import SignDataError


def read_utf8_lines(path: str, what: str = "file") -> List[str]:
    """The lines of a UTF-8 text file (without line endings). A UTF-8 byte-order mark (as spreadsheet
    programs write) is dropped; a UTF-16 one is an error saying so."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: {what} not found")
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]  # else the first column would be named "\ufeffid"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SignDataError(f"{path}: UTF-16 text (it starts with a UTF-16 BOM): save the {what} as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SignDataError(f"{path}: line {line} is not valid UTF-8 ({e.reason})") from e
    return text.splitlines()


def read_table(
    path: str, delimiter: str, required: Sequence[str], what: str = "file", strip: bool = False
) -> Tuple[List[str], List[Dict[str, str]]]:
    """``(header, rows)`` of a delimited file with a header line; each row has ``_line``.

    Blank lines are skipped; a missing required column or a row with the wrong number
    of fields is an error naming the file and the line.
    """
    lines = read_utf8_lines(path, what)
    if not lines:
        raise SignDataError(f"{path}: empty {what} (a header line {delimiter.join(required)} is required)")
    reader = csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise SignDataError(
            f"{path}: line 1: header lacks column(s) {', '.join(missing)} "
            f"(required: {delimiter.join(required)}; got: {delimiter.join(header)})"
        )
    rows = []
    for lineno, fields in enumerate(reader, start=2):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != len(header):
            raise SignDataError(
                f"{path}: line {lineno}: {len(fields)} columns, expected {len(header)} ({delimiter.join(header)})"
            )
        row = {k: (v.strip() if strip else v) for k, v in zip(header, fields)}
        row["_line"] = lineno
        rows.append(row)
    return header, rows
