# cython: language_level=3
"""The MSRP framing scans (RFC 4975 section 7.1) that run once per frame, in C.

sipsimple.msrp.parser owns the state machine and every error message; it calls these for the
searches that dominate a transfer in small chunks: a frame that is complete in the received
bytes is taken apart in one call (:func:`scan_frame`), header sections are split here
(:func:`parse_headers`), and end-lines are looked for with libc ``memmem`` (:func:`find`).
Nothing here raises for bad input: a refusal is None (or -1), and the parser's step by step
path then says precisely what is wrong.

Every function takes a bytes-like object (``bytes``, ``bytearray``: any contiguous buffer),
holds a buffer on it for the duration of the call (a bytearray cannot be resized meanwhile) and
reads only inside the range it was given (``[pos, end)``, ``[start, stop)``) clipped to the object.
"""

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.unicode cimport (
    PyUnicode_AsUTF8AndSize,
    PyUnicode_DecodeASCII,
    PyUnicode_DecodeUTF8,
    PyUnicode_GET_LENGTH,
)
from libc.string cimport memchr, memcmp, memcpy


cdef extern from "string.h" nogil:
    # GNU extension; Python.h defines _GNU_SOURCE before string.h is included
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen)


cdef enum:
    MAX_TID = 32  # transact-id = ident, at most 32 characters
    DASHES = 7  # the end-line's "-------"

# Byte classes of RFC 4975 (and of the parser's regular expressions before this module):
# token (header names), ident (transaction ids: first character, then the rest), and the
# control characters that may not appear in a header value (tab may).
cdef unsigned char TOKEN[256]
cdef unsigned char IDENT_FIRST[256]
cdef unsigned char IDENT[256]
cdef unsigned char VALUE_CTRL[256]


cdef void _init_classes():
    cdef int c
    for c in range(256):
        alnum = (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)
        TOKEN[c] = alnum or c in b"!#$%&'*+-.^_`|~"
        IDENT_FIRST[c] = alnum
        IDENT[c] = alnum or c in b".-+%="
        VALUE_CTRL[c] = c <= 8 or 10 <= c <= 31 or c == 127


_init_classes()

_FLAG_DOLLAR = "$"
_FLAG_PLUS = "+"
_FLAG_HASH = "#"
_CONTENT_TYPE = "Content-Type"

# The last string made for each slot (0: method, 1: comment, 2 + i: the value of header
# names[i]), reused while the same bytes come again: the chunks of a message repeat all but
# their Byte-Range, responses everything but the transaction id.  A reused string also has
# its hash already (the paths are looked up by value in sipsimple.msrp.uri's cache).
cdef list _recent = []
cdef enum:
    METHOD_SLOT = 0
    COMMENT_SLOT = 1
    HEADER_SLOTS = 2
    SHORT_SEARCH = 256  # this far, a memchr walk costs less than memmem's set-up


cdef Py_ssize_t _find(const unsigned char *base, Py_ssize_t start, Py_ssize_t stop,
                      const unsigned char *needle, Py_ssize_t size) noexcept nogil:
    """Where ``needle`` (not empty) starts inside ``base[start:stop]``, or -1, like ``bytes.find``.

    A match is usually near (a head's CRLF, the end-line after a small body): the first
    SHORT_SEARCH bytes are walked from one occurrence of the needle's first byte to the next
    (memchr), where memmem's set-up would cost more than the search; the rest goes to memmem.
    """
    cdef const unsigned char *at
    cdef const unsigned char *last
    if stop - start < size:
        return -1
    at = base + start
    last = base + min(stop - size, start + SHORT_SEARCH - 1)  # the last start walked to
    while at <= last:
        at = <const unsigned char *>memchr(at, needle[0], <size_t>(last - at + 1))
        if at == NULL:
            break
        if memcmp(at + 1, needle + 1, <size_t>(size - 1)) == 0:
            return at - base
        at += 1
    start += SHORT_SEARCH  # a match starting before this was found above
    if stop - start < size:
        return -1
    at = <const unsigned char *>memmem(base + start, <size_t>(stop - start), needle, <size_t>size)
    return -1 if at == NULL else at - base


cdef inline bint _is_space(unsigned char c) noexcept nogil:
    return c == 32 or c == 9


cdef inline unsigned char _lower(unsigned char c) noexcept nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef object _decode(Py_ssize_t slot, const unsigned char *data, Py_ssize_t size):
    """``data[:size]`` decoded from UTF-8 (raises UnicodeDecodeError), the recent string of ``slot`` if equal."""
    cdef Py_ssize_t known_size
    cdef const char *known
    while len(_recent) <= slot:
        _recent.append(None)
    recent = _recent[slot]
    if recent is not None:
        known = PyUnicode_AsUTF8AndSize(recent, &known_size)
        if known_size == size and memcmp(known, data, <size_t>size) == 0:
            return recent
    text = PyUnicode_DecodeUTF8(<const char *>data, size, NULL)
    _recent[slot] = text
    return text


cdef Py_ssize_t _header_index(const unsigned char *name, Py_ssize_t size, tuple names) except -2:
    """The index of ``name`` in ``names``, ignoring (ASCII) case, or -1."""
    cdef Py_ssize_t known_size, i, index
    cdef const unsigned char *known
    for index in range(len(names)):
        canonical = names[index]
        if not isinstance(canonical, str) or PyUnicode_GET_LENGTH(canonical) != size:
            continue
        known = <const unsigned char *>PyUnicode_AsUTF8AndSize(canonical, &known_size)
        if known_size != size:
            continue
        for i in range(size):
            if _lower(name[i]) != _lower(known[i]):
                break
        else:
            return index
    return -1


cdef object _headers(const unsigned char *b, Py_ssize_t start, Py_ssize_t end, tuple names):
    """The header lines in ``b[start:end]`` as {canonical name: value}, or None if any line is bad.

    A line is a token, ':' and a value without control characters (tab allowed) that is
    UTF-8; the name is spelled as in ``names`` if it is one of them, the value stripped of
    spaces and tabs; lines are separated by CRLF, and a name may not come twice.
    """
    cdef dict headers = {}
    cdef Py_ssize_t line = start, i, colon, value_start, value_end, index, count = 0
    if end <= start:
        return headers
    while True:
        i = line
        while i < end and TOKEN[b[i]]:
            i += 1
        if i == line or i == end or b[i] != 58:  # a token, then ':'
            return None
        colon = i
        i += 1
        while i < end and not VALUE_CTRL[b[i]]:
            i += 1
        # the value ends at the end or at a CRLF; any other control character is an error
        if i < end and (b[i] != 13 or i + 1 == end or b[i + 1] != 10):
            return None
        value_start = colon + 1
        value_end = i
        while value_start < value_end and _is_space(b[value_start]):
            value_start += 1
        while value_end > value_start and _is_space(b[value_end - 1]):
            value_end -= 1
        index = _header_index(b + line, colon - line, names)
        try:
            if index >= 0:
                name = names[index]
                value = _decode(HEADER_SLOTS + index, b + value_start, value_end - value_start)
            else:
                name = PyUnicode_DecodeASCII(<const char *>b + line, colon - line, NULL)
                value = PyUnicode_DecodeUTF8(<const char *>b + value_start, value_end - value_start, NULL)
        except UnicodeDecodeError:
            return None
        headers[name] = value
        count += 1
        if len(headers) != count:  # a name seen before
            return None
        if i == end:
            return headers
        line = i + 2


cdef object _scan(const unsigned char *b, Py_ssize_t p, Py_ssize_t end, tuple names,
                  Py_ssize_t max_start_line, Py_ssize_t head_probe, Py_ssize_t max_body):
    cdef Py_ssize_t nl, i, tid_start, tid_size, word, code = -1, comment_start = -1
    cdef Py_ssize_t bound, end_marker, end_blank, body_at, at, head_end, flag_at
    cdef unsigned char marker[2 + DASHES + MAX_TID]
    cdef Py_ssize_t marker_size
    cdef unsigned char flag

    # the limits only shorten searches: clamped, they cannot overflow an offset
    max_start_line = min(max_start_line, end)
    head_probe = min(head_probe, end)
    max_body = min(max_body, end)

    # start line: MSRP SP transact-id SP (method / status-code [SP comment]) CRLF
    nl = _find(b, p, min(end, p + max_start_line), b"\r\n", 2)
    if nl < 0 or nl - p < 5 or memcmp(b + p, b"MSRP ", 5) != 0:
        return None
    i = tid_start = p + 5
    if i >= nl or not IDENT_FIRST[b[i]]:
        return None
    i += 1
    while i < nl and IDENT[b[i]]:
        i += 1
    tid_size = i - tid_start
    if tid_size < 4 or tid_size > MAX_TID or i >= nl or b[i] != 32:
        return None
    word = i = i + 1
    if i < nl and 65 <= b[i] <= 90:  # a method: [A-Z]{1,32}
        while i < nl and 65 <= b[i] <= 90:
            i += 1
        if i != nl or i - word > 32:
            return None
    elif nl - i >= 3 and 48 <= b[i] <= 57 and 48 <= b[i + 1] <= 57 and 48 <= b[i + 2] <= 57:
        code = (b[i] - 48) * 100 + (b[i + 1] - 48) * 10 + (b[i + 2] - 48)
        i += 3
        if i < nl:
            if b[i] != 32:
                return None
            comment_start = i + 1
            # a lone CR or LF before the first CRLF is not part of a comment
            if memchr(b + comment_start, 13, <size_t>(nl - comment_start)) != NULL:
                return None
            if memchr(b + comment_start, 10, <size_t>(nl - comment_start)) != NULL:
                return None
    else:
        return None

    # the end-line: CRLF "-------" transact-id flag CRLF
    marker[0] = 13
    marker[1] = 10
    for i in range(DASHES):
        marker[2 + i] = 45
    memcpy(marker + 2 + DASHES, b + tid_start, <size_t>tid_size)
    marker_size = 2 + DASHES + tid_size

    # The head ends at the first blank line (a content section follows) or end-line, looked
    # for near the start line only (a full search could run through a body); a blank line
    # overlapping the end-line ("CRLF CRLF -------tid") still starts a content section.
    bound = min(end, nl + head_probe)
    end_marker = _find(b, nl, bound, marker, marker_size)
    end_blank = _find(b, nl, end_marker + 2 if end_marker >= 0 else bound, b"\r\n\r\n", 4)
    if end_blank >= 0:
        body_at = end_blank + 4
        head_end = end_blank
        at = _find(b, body_at, min(end, body_at + max_body + marker_size), marker, marker_size)
    elif end_marker >= 0:
        at = head_end = body_at = end_marker
    else:
        return None
    flag_at = at + marker_size
    if at < 0 or end < flag_at + 3:
        return None  # incomplete, or a body longer than max_body
    flag = b[flag_at]
    if (flag != 36 and flag != 43 and flag != 35) or b[flag_at + 1] != 13 or b[flag_at + 2] != 10:
        return None  # a false end-line in the body, or a bad end-line

    headers = _headers(b, nl + 2, head_end, names)
    if headers is None:
        return None
    if end_blank >= 0 and _CONTENT_TYPE not in headers:
        return None
    if comment_start >= 0:
        try:
            comment = _decode(COMMENT_SLOT, b + comment_start, nl - comment_start)
        except UnicodeDecodeError:
            return None
    else:
        comment = None
    tid = PyUnicode_DecodeASCII(<const char *>b + tid_start, tid_size, NULL)
    flag_s = _FLAG_DOLLAR if flag == 36 else _FLAG_PLUS if flag == 43 else _FLAG_HASH
    if code < 0:
        return (tid, _decode(METHOD_SLOT, b + word, nl - word), None, None, headers, body_at, at, flag_s,
                flag_at + 3)
    return (tid, None, code, comment, headers, body_at, at, flag_s, flag_at + 3)


def scan_frame(buf, Py_ssize_t pos, Py_ssize_t end, tuple names not None, Py_ssize_t max_start_line,
               Py_ssize_t head_probe, Py_ssize_t max_body):
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
    cdef Py_buffer view
    if pos < 0:
        raise ValueError("negative position")
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        end = min(end, view.len)
        if pos >= end:
            return None
        return _scan(<const unsigned char *>view.buf, pos, end, names, max_start_line, head_probe, max_body)
    finally:
        PyBuffer_Release(&view)


def parse_headers(buf, Py_ssize_t start, Py_ssize_t end, tuple names not None):
    """The header lines in ``buf[start:end]`` as {name: value} in wire order, or None if any is bad.

    Lines are separated by CRLF; each is a token, ``:`` and a value that is UTF-8 without
    control characters (tab allowed), stripped of spaces and tabs.  A name equal to one of
    ``names`` ignoring ASCII case is spelled as there; a name found twice makes the section
    bad.  An empty range gives ``{}``.  Raises ValueError for a negative ``start``.
    """
    cdef Py_buffer view
    if start < 0:
        raise ValueError("negative position")
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        return _headers(<const unsigned char *>view.buf, start, min(end, view.len), names)
    finally:
        PyBuffer_Release(&view)


def find(buf, bytes needle not None, Py_ssize_t start, Py_ssize_t stop=-1):
    """``buf.find(needle, start, stop)`` (``stop`` -1: to the end) through memchr and memmem.

    Cheap at any size: near matches are found without memmem's set-up, long stretches in
    memmem's time.  Raises ValueError for a negative ``start``.
    """
    cdef Py_buffer view
    if start < 0:
        raise ValueError("negative position")
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        if stop < 0 or stop > view.len:
            stop = view.len
        if not needle:
            return start if start <= stop else -1
        return _find(<const unsigned char *>view.buf, start, stop, <const unsigned char *>PyBytes_AS_STRING(needle), len(needle))
    finally:
        PyBuffer_Release(&view)
