import re

# Parse entry points through Sofia-SIP's own parsers: URIs, whole SIP messages
# and SDP. They return plain Python values; the typed objects (SIPURI,
# SIPMessage, SDPSession) are built from them in pure Python modules.

cdef str _text(const char *p):
    return p.decode("utf-8", "surrogateescape") if p != NULL else None


def parse_uri(text):
    """Split a SIP/SIPS URI with Sofia's URL parser.

    Returns (scheme, user, password, host, port, params, headers); params and
    headers are the raw strings after ';' and '?'. Raises ValueError naming the text.
    """
    cdef bytes b
    cdef S.su_home_t *home
    cdef S.url_t *url
    if isinstance(text, str):
        b = text.encode("utf-8", "surrogateescape")
    elif isinstance(text, bytes):
        b = text
    else:
        raise TypeError(f"a SIP URI must be str or bytes, not {type(text).__name__}")
    if not b or b"\0" in b or any(ch <= 32 or ch == 127 for ch in b):
        raise ValueError(f"invalid SIP URI: {text!r}")
    home = S.su_home_new(64)
    if home == NULL:
        raise MemoryError()
    try:
        url = S.url_make(home, b)
        if url == NULL or url.url_type not in (S.url_sip, S.url_sips) or url.url_host == NULL \
                or url.url_host[0] == 0 or url.url_path != NULL or url.url_fragment != NULL:
            raise ValueError(f"invalid SIP URI: {text!r}")
        return ("sips" if url.url_type == S.url_sips else "sip",
                _text(url.url_user), _text(url.url_password), _text(url.url_host),
                _text(url.url_port), _text(url.url_params), _text(url.url_headers))
    finally:
        S.su_home_unref(home)


def parse_message(data):
    """Parse a whole SIP message with Sofia's parser and print it back.

    Returns the message as Sofia encodes it (canonical header names, one
    header per line). Raises ValueError for a message Sofia finds malformed.
    """
    cdef const unsigned char[:] view = data
    cdef S.msg_t *msg
    cdef char *out
    cdef size_t out_len = 0
    cdef bytes result
    if len(data) == 0:
        raise ValueError("empty SIP message")
    with nogil:
        msg = S.msg_make(S.sip_default_mclass(), 0, &view[0], view.shape[0])
    if msg == NULL:
        raise ValueError("malformed SIP message")
    try:
        if S.msg_has_error(msg) or S.msg_extract_errors(msg):
            raise ValueError("malformed SIP message")
        with nogil:
            out = S.msg_as_string(S.msg_home(msg), msg, NULL, 0, &out_len)
        if out == NULL:
            raise ValueError("malformed SIP message")
        result = out[:out_len]
        S.su_free(S.msg_home(msg), out)
        return result
    finally:
        S.msg_destroy(msg)


cdef object _connection(const S.sdp_connection_t *c):
    if c == NULL:
        return None
    return ("IP6" if c.c_addrtype == S.sdp_addr_ip6 else "IP4", _text(c.c_address))


cdef list _attributes(const S.sdp_attribute_t *a):
    cdef list out = []
    while a != NULL:
        out.append((_text(a.a_name), _text(a.a_value)))
        a = a.a_next
    return out


cdef list _bandwidths(const S.sdp_bandwidth_t *b):
    cdef list out = []
    while b != NULL:
        out.append((_text(b.b_modifier_name), b.b_value))
        b = b.b_next
    return out


cdef tuple _time(const S.sdp_time_t *t):
    if t == NULL:
        return (0, 0)
    return (t.t_start, t.t_stop)


# every byte but the control characters (tab, CR and LF are fine)
_SDP_ALLOWED = b"\t\r\n" + bytes(range(32, 127)) + bytes(range(128, 256))


# RFC 4566: m=<media> <port>[/<number>] <proto> <fmt> ...; media and fmt are tokens, proto is
# tokens joined by "/" (token-char excludes "/", so a format cannot start with one)
_SDP_TOKEN = rb"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_SDP_MEDIA_LINE = re.compile(
    rb"m=" + _SDP_TOKEN + rb" [0-9]+(/[0-9]+)? " + _SDP_TOKEN + rb"(/" + _SDP_TOKEN + rb")*( " + _SDP_TOKEN + rb")*\Z"
)


cdef bytes _sdp_bytes(data):
    # Sofia's SDP parser can spin for seconds on a control character inside a
    # token (e.g. "RT\x01/AVP"): refuse them before it sees the text
    cdef bytes b = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if not b:
        raise ValueError("empty SDP")
    bad = b.translate(None, _SDP_ALLOWED)
    if bad:
        raise ValueError(f"invalid SDP: control character 0x{bad[0]:02x}")
    # it also spins on a non-token byte in an m= line's protocol: check m= lines first
    for line in b.splitlines():
        if line.startswith(b"m=") and _SDP_MEDIA_LINE.match(line) is None:
            raise ValueError(f"invalid SDP: malformed media line {line[:80]!r}")
    return b


def parse_sdp(data):
    """Parse an SDP body with Sofia's SDP parser.

    Returns a dict with the session fields and a list of media dicts; the
    rtpmap and fmtp lines Sofia folds into its rtpmap list come back as
    attributes. Raises ValueError with Sofia's error text.
    """
    cdef bytes b = _sdp_bytes(data)
    cdef S.su_home_t *home
    cdef S.sdp_parser_t *parser
    cdef S.sdp_session_t *sdp
    cdef S.sdp_media_t *m
    cdef S.sdp_rtpmap_t *rm
    cdef S.sdp_list_t *fmt
    cdef S.sdp_connection_t *c
    home = S.su_home_new(64)
    if home == NULL:
        raise MemoryError()
    parser = S.sdp_parse(home, b, len(b), S.sdp_f_mode_manual | S.sdp_f_anynet)
    try:
        sdp = S.sdp_session(parser)
        if sdp == NULL:
            raise ValueError(f"invalid SDP: {_text(S.sdp_parsing_error(parser))}")
        origin = None
        if sdp.sdp_origin != NULL:
            o = sdp.sdp_origin
            origin = (_text(o.o_username), o.o_id, o.o_version, _connection(o.o_address))
        session = {
            "version": sdp.sdp_version[0],
            "origin": origin,
            "name": _text(sdp.sdp_subject),
            "info": _text(sdp.sdp_information),
            "connection": _connection(sdp.sdp_connection),
            "bandwidths": _bandwidths(sdp.sdp_bandwidths),
            "time": _time(sdp.sdp_time),
            "attributes": _attributes(sdp.sdp_attributes),
            "media": [],
        }
        m = sdp.sdp_media
        while m != NULL:
            formats = []
            fmt = m.m_format
            while fmt != NULL:
                formats.append(_text(fmt.l_text))
                fmt = fmt.l_next
            rtpmaps = []
            rm = m.m_rtpmaps
            while rm != NULL:
                rtpmaps.append((rm.rm_pt, _text(rm.rm_encoding), rm.rm_rate, _text(rm.rm_params),
                                _text(rm.rm_fmtp)))
                rm = rm.rm_next
            connections = []
            c = m.m_connections
            while c != NULL:
                connections.append(_connection(c))
                c = c.c_next
            session["media"].append({
                "media": _text(m.m_type_name),
                "port": m.m_port,
                "port_count": m.m_number_of_ports,
                "transport": _text(m.m_proto_name),
                "formats": formats,
                "rtpmaps": rtpmaps,
                "info": _text(m.m_information),
                "connection": connections[0] if connections else None,
                "bandwidths": _bandwidths(m.m_bandwidths),
                "attributes": _attributes(m.m_attributes),
            })
            m = m.m_next
        return session
    finally:
        S.sdp_parser_free(parser)
        S.su_home_unref(home)


def print_sdp(data):
    """Parse SDP text and print it back through Sofia's SDP printer (canonical form)."""
    cdef bytes b = _sdp_bytes(data)
    cdef S.su_home_t *home = S.su_home_new(64)
    cdef S.sdp_parser_t *parser
    cdef S.sdp_printer_t *printer = NULL
    cdef S.sdp_session_t *sdp
    if home == NULL:
        raise MemoryError()
    parser = S.sdp_parse(home, b, len(b), S.sdp_f_mode_manual | S.sdp_f_anynet)
    try:
        sdp = S.sdp_session(parser)
        if sdp == NULL:
            raise ValueError(f"invalid SDP: {_text(S.sdp_parsing_error(parser))}")
        printer = S.sdp_print(home, sdp, NULL, 0, S.sdp_f_mode_manual | S.sdp_f_all_rtpmaps)
        if printer == NULL or S.sdp_message(printer) == NULL:
            raise ValueError(f"SDP cannot be printed: {_text(S.sdp_printing_error(printer))}")
        return S.sdp_message(printer)[:S.sdp_message_size(printer)]
    finally:
        if printer != NULL:
            S.sdp_printer_free(printer)
        S.sdp_parser_free(parser)
        S.su_home_unref(home)
