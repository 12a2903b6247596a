"""Type stub of the compiled MSRP framing scans (sipsimple.core._msrp).

sipsimple.msrp.parser owns the parser's state machine and its error messages and calls these
for the work done once per frame.  None of them raises for bad input: a refusal is None (or
-1), and the parser's step by step path then says what is wrong.  Each takes a bytes-like
object (``bytes``, ``bytearray``; any contiguous buffer), holds a buffer on it during the call
and reads only inside the bounds it is given, clipped to the object.
"""

Buffer = bytes | bytearray | memoryview
FrameScan = tuple[str, str | None, int | None, str | None, dict[str, str], int, int, str, int]

def scan_frame(
    buf: Buffer,
    pos: int,
    end: int,
    names: tuple[str, ...],
    max_start_line: int,
    head_probe: int,
    max_body: int,
) -> FrameScan | None:
    """Take apart the MSRP frame that starts at ``pos`` and is complete before ``end``.

    Returns ``(transaction_id, method, code, comment, headers, body_start, body_end, contflag,
    next)``: a request has ``method`` and ``code`` None, a response the reverse (``comment`` is
    None when the status line has none); ``headers`` as :func:`parse_headers` gives them; the
    body is ``buf[body_start:body_end]`` (empty without a content section); ``contflag`` is
    ``"$"``, ``"+"`` or ``"#"``; the next frame starts at ``next``.

    Returns None when the frame is not complete in ``buf[pos:end]`` or is anything but plain:
    a start line not found within ``max_start_line`` bytes or not matching RFC 4975; a head not
    ending (blank line or end-line) within ``head_probe`` bytes of the start line; a body end
    not found within ``max_body`` bytes, or whose first candidate is not a valid end-line; a
    header section :func:`parse_headers` refuses; a content section without Content-Type; a
    comment that is not UTF-8.  Raises ValueError for a negative ``pos``.
    """

def parse_headers(buf: Buffer, start: int, end: int, names: tuple[str, ...]) -> dict[str, str] | None:
    """The header lines in ``buf[start:end]`` as {name: value} in wire order, or None if any is bad.

    Lines are separated by CRLF; each is a token, ``:`` and a value that is UTF-8 without
    control characters (tab allowed), stripped of spaces and tabs.  A name equal to one of
    ``names`` ignoring ASCII case is spelled as there; a name found twice makes the section
    bad.  An empty range gives ``{}``.  Raises ValueError for a negative ``start``.
    """

def find(buf: Buffer, needle: bytes, start: int, stop: int = -1) -> int:
    """``buf.find(needle, start, stop)`` (``stop`` -1: to the end) through memchr and memmem.

    Cheap at any size: near matches are found without memmem's set-up, long stretches in
    memmem's time.  Raises ValueError for a negative ``start``.
    """
