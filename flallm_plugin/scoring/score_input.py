"""Reading the text inputs of scoring, with errors that name the file and the line."""
from typing import List


class ScoreInputError(ValueError):
    """An input file cannot be scored; the message names the file (and line)."""


def read_lines(path: str) -> List[str]:
    """Lines of a UTF-8 text file, split on ``\\n`` only, without line endings."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ScoreInputError(f"{path}: cannot read: {e.strerror or e}") from e
    if not raw:
        return []
    chunks = raw.split(b"\n")
    if chunks[-1] == b"":  # final newline
        chunks.pop()
    lines = []
    for lineno, chunk in enumerate(chunks, start=1):
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScoreInputError(
                f"{path}:{lineno}: not valid UTF-8 (byte 0x{chunk[e.start]:02x} "
                f"at column {e.start + 1})"
            ) from e
        lines.append(line[:-1] if line.endswith("\r") else line)
    return lines
