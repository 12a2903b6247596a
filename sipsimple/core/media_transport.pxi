# media_transport.pxi: AudioTransport, the Python face of one RTP stream.

_port_cursor = {}


cdef object sockaddr_to_tuple(sockaddr_storage *a):
    cdef char buf[64]
    if a.ss_family == AF_INET:
        inet_ntop(AF_INET, &(<sockaddr_in *>a).sin_addr, buf, 64)
    elif a.ss_family == AF_INET6:
        inet_ntop(AF_INET6, &(<sockaddr_in6 *>a).sin6_addr, buf, 64)
    else:
        return None
    return (buf.decode("ascii"), sockaddr_get_port(a))


cdef int tuple_to_sockaddr(object host, int port, sockaddr_storage *out, socklen_t *outlen) except -1:
    info = _socket.getaddrinfo(host, port, 0, _socket.SOCK_DGRAM, 0, _socket.AI_NUMERICSERV)
    family, _, _, _, addr = info[0]
    memset(out, 0, sizeof(sockaddr_storage))
    ip = addr[0].encode("ascii")
    if family == _socket.AF_INET6:
        (<sockaddr_in6 *>out).sin6_family = AF_INET6
        (<sockaddr_in6 *>out).sin6_port = htons(<uint16_t>port)
        inet_pton(AF_INET6, ip, &(<sockaddr_in6 *>out).sin6_addr)
        outlen[0] = sizeof(sockaddr_in6)
    else:
        (<sockaddr_in *>out).sin_family = AF_INET
        (<sockaddr_in *>out).sin_port = htons(<uint16_t>port)
        inet_pton(AF_INET, ip, &(<sockaddr_in *>out).sin_addr)
        outlen[0] = sizeof(sockaddr_in)
    return 0


def _bind_pair(local_ip, lo, hi):
    """Bind an RTP socket on an even port and RTCP on the next one, inside [lo, hi]."""
    family = _socket.AF_INET6 if ":" in local_ip else _socket.AF_INET
    lo += lo & 1
    span = (hi - lo) // 2
    if span <= 0:
        raise MediaError("empty port range")
    key = (local_ip, lo, hi)
    start = _port_cursor.get(key, int.from_bytes(_os.urandom(2), "little") % span)
    for i in range(span):
        idx = (start + i) % span
        port = lo + 2 * idx
        rtp = _socket.socket(family, _socket.SOCK_DGRAM)
        rtcp = _socket.socket(family, _socket.SOCK_DGRAM)
        try:
            rtp.bind((local_ip, port))
            rtcp.bind((local_ip, port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        rtp.setblocking(False)
        rtcp.setblocking(False)
        _port_cursor[key] = (idx + 1) % span
        return rtp, rtcp
    raise MediaError("no free RTP port pair in %d-%d on %s" % (lo, hi, local_ip))


def _parse_fmtp(fmtp):
    params = {}
    for item in (fmtp or "").replace(",", ";").split(";"):
        key, _, value = item.strip().partition("=")
        if key:
            params[key.lower()] = value.strip()
    return params


cdef void stream_release_codec(Stream *s) noexcept nogil:
    codec_close(&s.codec)
    if s.rs_in != NULL:
        speex_resampler_destroy(s.rs_in)
        s.rs_in = NULL
    if s.rs_out != NULL:
        speex_resampler_destroy(s.rs_out)
        s.rs_out = NULL


cdef class BridgePort:
    """Base of the objects that own a port of the conference bridge."""

    cdef readonly int port
    cdef readonly unsigned int _gen
    cdef object __weakref__

    def __cinit__(self):
        self.port = -1

    cdef int _attach(self, int kind, void *obj) except -1:
        cdef int pid
        _engine_init()
        py_lock()
        pid = port_alloc(kind, obj)
        if pid >= 0:
            self._gen = g_engine.ports[pid].gen
        engine_unlock()
        if pid < 0:
            raise MediaError("the bridge has no free port")
        self.port = pid
        _port_owners[pid] = _weakref.ref(self)
        return pid

    def _on_event(self, kind, data):
        pass


cdef class AudioTransport(BridgePort):
    """One RTP/RTCP audio stream (optionally SRTP), bridged as one port.

    AudioTransport(local_ip='127.0.0.1', port_range=(50000, 60000), srtp='off',
                   codecs=None, ptime=20, ...)

    ``local_media()`` describes our side for SDP; ``start(remote)`` starts the
    stream from the remote description (a dict of the same shape);
    ``update(remote)`` applies a re-INVITE; ``stop()`` ends it.

    The jitter buffer keeps as little delay as the jitter of the last seconds
    needs (it grows on an underrun, shrinks again by skipping packets, silent
    ones first), plus a safety margin that rises to the lateness of underruns
    and decays while none happen: ``jitter_min_ms`` is the least margin,
    ``jitter_max_ms`` the most delay it may hold (a longer gap is a pause).
    """

    cdef Stream *s
    cdef object _rtp_sock, _rtcp_sock
    cdef readonly object local_ip
    cdef readonly int local_port, local_rtcp_port
    cdef readonly object srtp_mode, codecs, srtp_suites
    cdef readonly int ptime
    cdef object _local_keys, _local_pt, _local_te, _answer_crypto, _srtp_state
    cdef object _direction, _remote, _codec, _remote_sdp
    cdef bint _answerer
    cdef readonly object dtmf_received
    cdef double _no_audio_timeout, _rtp_timeout, _rtcp_interval
    cdef int _opus_dtx, _opus_bitrate, _opus_complexity, _jb_min, _jb_max

    def __init__(self, local_ip="127.0.0.1", port_range=(50000, 60000), srtp="off", codecs=None, ptime=20,
                 srtp_suites=None, no_audio_timeout=5.0, rtp_timeout=30.0, rtcp_interval=5.0, opus_dtx=False,
                 opus_bitrate=0, opus_complexity=5, dtmf_local_tone=False, jitter_min_ms=0, jitter_max_ms=300):
        cdef Stream *s
        if srtp not in ("off", "optional", "mandatory"):
            raise ValueError("srtp must be 'off', 'optional' or 'mandatory'")
        names = []
        for name in (codecs or DEFAULT_CODECS):
            c = _codec_by_name(name)
            if c is None:
                raise ValueError("unknown codec %r" % name)
            names.append(c.name)
        if not names:
            raise ValueError("no codecs")
        if ptime not in (10, 20, 30, 40, 60):
            raise ValueError("ptime must be 10, 20, 30, 40 or 60")
        if not 0 <= jitter_min_ms <= jitter_max_ms or jitter_max_ms > 1000:
            raise ValueError("need 0 <= jitter_min_ms <= jitter_max_ms <= 1000")
        self.local_ip = local_ip
        self.srtp_mode = srtp
        self.codecs = tuple(names)
        self.srtp_suites = tuple(srtp_suites or DEFAULT_SRTP_SUITES)
        for suite in self.srtp_suites:
            if suite not in SRTP_SUITES:
                raise ValueError("unknown SRTP suite %r" % suite)
        self.ptime = ptime
        self._local_keys = {suite: generate_srtp_key(suite) for suite in self.srtp_suites}
        self._local_pt = {}
        self._local_te = {}
        self._answer_crypto = None
        self._srtp_state = None
        self._direction = "sendrecv"
        self._remote = None
        self._codec = None
        self._remote_sdp = None
        self.dtmf_received = []
        self._no_audio_timeout = no_audio_timeout
        self._rtp_timeout = rtp_timeout
        self._rtcp_interval = rtcp_interval
        self._opus_dtx = 1 if opus_dtx else 0
        self._opus_bitrate = opus_bitrate
        self._opus_complexity = opus_complexity
        self._jb_min = jitter_min_ms
        self._jb_max = jitter_max_ms
        self._rtp_sock, self._rtcp_sock = _bind_pair(local_ip, port_range[0], port_range[1])
        self.local_port = self._rtp_sock.getsockname()[1]
        self.local_rtcp_port = self._rtcp_sock.getsockname()[1]
        s = <Stream *>calloc(1, sizeof(Stream))
        if s == NULL:
            raise MemoryError()
        s.rtp_fd = self._rtp_sock.fileno()
        s.rtcp_fd = self._rtcp_sock.fileno()
        rnd = _os.urandom(10)
        s.ssrc = int.from_bytes(rnd[0:4], "big")
        s.seq = int.from_bytes(rnd[4:6], "big") & 0x7FFF
        s.ts = int.from_bytes(rnd[6:10], "big")
        s.marker_next = 1
        s.rx_pt = s.rx_pt_alt = s.te_rx_pt = s.te_rx_pt_alt = s.te_tx_pt = -1
        s.dtmf_local_tone = 1 if dtmf_local_tone else 0
        cname = ("sipsimple-%s@%s" % (_os.urandom(4).hex(), local_ip)).encode()[:60]
        memcpy(s.cname, <const char *>cname, len(cname))
        s.cname_len = len(cname)
        self.s = s
        try:
            self._attach(PORT_STREAM, s)
        except BaseException:
            free(s)
            self.s = NULL
            raise
        s.port = g_engine.ports[self.port]
        py_lock()
        engine_watch_fd(s.rtp_fd, self.port, self._gen, 0)
        engine_watch_fd(s.rtcp_fd, self.port, self._gen, 1)
        engine_unlock()

    def __dealloc__(self):
        if self.s != NULL:
            self._teardown()

    cdef void _teardown(self) noexcept:
        cdef Stream *s = self.s
        cdef srtp_t tx, rx
        if s == NULL:
            return
        py_lock()
        stream_send_bye(s)
        s.started = 0
        engine_unwatch_fd(s.rtp_fd)
        engine_unwatch_fd(s.rtcp_fd)
        if self.port >= 0 and g_engine.ports[self.port] != NULL and g_engine.ports[self.port].obj == <void *>s:
            port_free(self.port)
        tx = s.srtp_tx
        rx = s.srtp_rx
        s.srtp_tx = s.srtp_rx = NULL
        engine_unlock()
        if tx != NULL:
            srtp_dealloc(tx)
        if rx != NULL:
            srtp_dealloc(rx)
        stream_release_codec(s)
        free(s)
        self.s = NULL

    def stop(self):
        """Stop the stream, leave the bridge and close the sockets."""
        if self.s == NULL:
            return
        self._teardown()
        _port_owners.pop(self.port, None)
        self._rtp_sock.close()
        self._rtcp_sock.close()

    @property
    def is_started(self):
        return self.s != NULL and bool(self.s.started)

    # ------------------------------------------------------------------ SDP

    def local_media(self, remote=None, direction=None):
        """Our media description for SDP.

        With ``remote`` (an offer) this is the answer: codecs restricted to the
        common ones (remote payload types kept) and one crypto line matching
        the first acceptable remote one. Returns a dict with address, port,
        rtcp_port, transport, codecs [(pt, name, rate, channels, fmtp)],
        ptime, crypto [lines], direction, rtcp_mux (offered; answered when the
        offer had it: RTCP is received on both ports anyway).
        """
        if direction is not None:
            if direction not in _DIRECTIONS:
                raise ValueError("bad direction %r" % direction)
            self._direction = direction
        codecs = []
        te_rates = []
        self._answerer = remote is not None
        if remote is None:
            next_pt = 96
            used = set()
            for name in self.codecs:
                c = _CODECS[name]
                pt = self._local_pt.get(name)
                if pt is None:
                    pt = c.static_pt if c.static_pt is not None else _DYNAMIC_PT.get(name, next_pt)
                self._local_pt[name] = pt
                used.add(pt)
                codecs.append((pt, c.name, c.clock_rate, c.channels, c.fmtp))
                if c.clock_rate not in te_rates:
                    te_rates.append(c.clock_rate)
            if 8000 not in te_rates:
                te_rates.append(8000)       # widely expected, also next to opus
            for rate in te_rates:
                pt = self._local_te.setdefault(rate, _TE_PT.get(rate, 110))
                codecs.append((pt, "telephone-event", rate, 1, "0-16"))
        else:
            remote_codecs = [tuple(c) for c in remote.get("codecs", ())]
            for name in self.codecs:
                c = _CODECS[name]
                for rc in remote_codecs:
                    if rc[1].lower() == c.name.lower() and rc[2] == c.clock_rate:
                        self._local_pt[name] = rc[0]
                        codecs.append((rc[0], c.name, c.clock_rate, c.channels, c.fmtp))
                        if c.clock_rate not in te_rates:
                            te_rates.append(c.clock_rate)
                        break
            remote_te = [rc for rc in remote_codecs if rc[1].lower() == "telephone-event"]
            matching = [rc for rc in remote_te if rc[2] in te_rates]
            for rc in matching or remote_te[:1]:
                self._local_te[rc[2]] = rc[0]
                codecs.append((rc[0], "telephone-event", rc[2], 1, "0-16"))
        crypto = []
        transport = "RTP/AVP"
        if self.srtp_mode != "off":
            if remote is None:
                for tag, suite in enumerate(self.srtp_suites, 1):
                    crypto.append(build_crypto_line(tag, suite, self._local_keys[suite]))
                if self.srtp_mode == "mandatory":
                    transport = "RTP/SAVP"
            else:
                self._answer_crypto = None
                for line in remote.get("crypto", ()) or ():
                    try:
                        tag, suite, key = parse_crypto_line(line)
                    except ValueError:
                        continue
                    if suite in self._local_keys:
                        self._answer_crypto = (tag, suite)
                        crypto.append(build_crypto_line(tag, suite, self._local_keys[suite]))
                        break
                if crypto:
                    transport = remote.get("transport", "RTP/AVP") if remote.get("transport") else "RTP/SAVP"
        return {
            "address": self.local_ip,
            "port": self.local_port,
            "rtcp_port": self.local_rtcp_port,
            "transport": transport,
            "codecs": codecs,
            "ptime": self.ptime,
            "crypto": crypto,
            "direction": self._direction,
            "rtcp_mux": True if remote is None else bool(remote.get("rtcp_mux", False)),
        }

    def _negotiate_srtp(self, remote):
        if self.srtp_mode == "off":
            return None
        lines = remote.get("crypto", ()) or ()
        parsed = []
        for line in lines:
            try:
                parsed.append(parse_crypto_line(line))
            except ValueError:
                continue
        chosen = None
        if self._answer_crypto is not None:
            for tag, suite, key in parsed:
                if (tag, suite) == self._answer_crypto:
                    chosen = (suite, key)
                    break
        else:
            for tag, suite, key in parsed:
                if suite in self._local_keys:
                    chosen = (suite, key)
                    break
        if chosen is None and self.srtp_mode == "mandatory":
            raise MediaError("SRTP is mandatory but the remote offered no usable crypto attribute")
        return chosen

    def start(self, remote, direction=None):
        """Start sending/receiving according to the remote description.

        ``remote`` keys: address, port, rtcp_port (default port+1), rtcp_mux,
        codecs [(pt, name, rate, channels, fmtp)] in the remote's preference
        order, ptime, crypto [lines], direction.
        """
        self._configure(remote, direction)

    def update(self, remote, direction=None):
        """Apply a new remote description (re-INVITE), e.g. hold/unhold."""
        self._configure(remote, direction)

    def _configure(self, remote, direction):
        cdef Stream *s = self.s
        cdef sockaddr_storage rtp_addr, rtcp_addr
        cdef socklen_t rtp_len = 0, rtcp_len = 0
        cdef srtp_t new_tx = NULL, new_rx = NULL, old_tx = NULL, old_rx = NULL
        cdef CodecState newc
        cdef SpeexResamplerState *rs_in = NULL
        cdef SpeexResamplerState *rs_out = NULL
        cdef int err = 0, rebuild, ptime, rate, frame, can_send, can_recv
        if s == NULL:
            raise MediaError("the transport is stopped")
        if not g_engine.initialized:
            raise MediaError("the media engine was never started")
        if direction is not None:
            if direction not in _DIRECTIONS:
                raise ValueError("bad direction %r" % direction)
            self._direction = direction
        chosen = None
        remote_codecs = list(remote.get("codecs", ()))
        if self._answerer:
            # as answerer we send with the first codec of our answer (our preference order)
            order = {name.lower(): i for i, name in enumerate(self.codecs)}
            remote_codecs.sort(key=lambda rc: order.get(rc[1].lower(), len(order)))
        for rc in remote_codecs:
            pt, name, crate = rc[0], rc[1], rc[2]
            fmtp = rc[4] if len(rc) > 4 else ""
            if name.lower() == "telephone-event":
                continue
            c = _codec_by_name(name, crate)
            if c is not None and c.name in self.codecs:
                chosen = (c, pt, fmtp)
                break
        if chosen is None:
            raise MediaError("no codec in common with the remote party")
        codec, tx_pt, fmtp = chosen
        if codec.name not in self._local_pt:
            self._local_pt[codec.name] = codec.static_pt if codec.static_pt is not None else tx_pt
        rx_pt = self._local_pt[codec.name]
        # telephone-event at the codec's clock; else whichever the remote has
        # (e.g. telephone-event/8000 next to opus/48000, as some phones do)
        te_tx, te_clock = -1, codec.clock_rate
        tes = [rc for rc in remote.get("codecs", ()) if rc[1].lower() == "telephone-event"]
        tes.sort(key=lambda rc: rc[2] != codec.clock_rate)
        if tes:
            te_tx, te_clock = tes[0][0], tes[0][2]
        te_rx = self._local_te.get(te_clock, te_tx)
        ptime = remote.get("ptime") or self.ptime
        if ptime not in (10, 20, 30, 40, 60) or (codec.name == "GSM" and ptime % 20) \
                or (codec.name == "opus" and ptime == 30):
            ptime = self.ptime if not (codec.name == "GSM" and self.ptime % 20) else 20
        srtp_choice = self._negotiate_srtp(remote)
        rport = int(remote.get("port", 0))
        raddr = remote.get("address") or "0.0.0.0"
        rtcp_mux = bool(remote.get("rtcp_mux", False))
        rtcp_port = int(remote.get("rtcp_port") or (rport if rtcp_mux else rport + 1))
        remote_dir = remote.get("direction", "sendrecv")
        if rport == 0 or raddr in ("0.0.0.0", "::"):
            remote_dir = "inactive" if rport == 0 else ("recvonly" if remote_dir == "sendrecv" else remote_dir)
        if rport:
            tuple_to_sockaddr(raddr, rport, &rtp_addr, &rtp_len)
            tuple_to_sockaddr(raddr, rtcp_port, &rtcp_addr, &rtcp_len)
        rate = g_engine.sample_rate
        frame = g_engine.frame_samples
        rebuild = self._codec is None or self._codec[0] is not codec or self._codec[1] != ptime \
            or s.bridge_rate != rate or self._codec[2] != fmtp
        if rebuild:
            # RFC 7587: the remote's fmtp says what it wants to receive
            params = _parse_fmtp(fmtp)
            fec = 1 if params.get("useinbandfec") == "1" else 0
            dtx = 1 if (self._opus_dtx or params.get("usedtx") == "1") else 0
            bitrate = self._opus_bitrate
            if params.get("maxaveragebitrate", "").isdigit():
                cap = int(params["maxaveragebitrate"])
                bitrate = min(bitrate, cap) if bitrate else cap
            if codec_open(&newc, codec._cid, ptime, dtx, fec, bitrate, self._opus_complexity, rate) != 0:
                codec_close(&newc)
                raise MediaError("cannot open codec %s" % codec.name)
            if newc.sample_rate != rate:
                # no speex_resampler_skip_zeros(): skipping the filter's leading zeros makes
                # the first call return a partial frame, and that shortfall then stays in the
                # transmit FIFO for good (~a frame of extra delay). Kept, the zeros delay the
                # audio by half the filter (~3 ms), and every bridge tick yields exactly one
                # codec frame since all bridge/codec rate ratios here divide a frame evenly.
                rs_in = speex_resampler_init(1, newc.sample_rate, rate, 3, &err)
                rs_out = speex_resampler_init(1, rate, newc.sample_rate, 3, &err)
        can_send = 1 if _can_send(self._direction, remote_dir) else 0
        can_recv = 1 if _can_recv(self._direction, remote_dir) else 0
        # SRTP sessions: rebuilt only when keys change
        new_state = None
        try:
            if srtp_choice is not None:
                suite, rkey = srtp_choice
                new_state = (suite, self._local_keys[suite], rkey)
                if new_state != self._srtp_state:
                    new_tx = srtp_session(suite, self._local_keys[suite], 1)
                    new_rx = srtp_session(suite, rkey, 0)
        except BaseException:
            if new_tx != NULL:
                srtp_dealloc(new_tx)
            if rebuild:
                codec_close(&newc)
                if rs_in != NULL:
                    speex_resampler_destroy(rs_in)
                    speex_resampler_destroy(rs_out)
            raise
        py_lock()
        if rebuild:
            stream_release_codec(s)
            s.codec = newc
            s.rs_in = rs_in
            s.rs_out = rs_out
            s.bridge_rate = rate
            s.bridge_frame = frame
            s.txfifo_len = 0
            s.rxfifo_len = 0
            s.last_len = 0
            s.last_gsm_len = 0
            s.late_ticks_seen = g_engine.late_ticks
            s.marker_next = 1
            jb_init(&s.jb, ptime, self._jb_min, min(self._jb_max, ptime * (JB_SLOTS // 2)), newc.id == C_OPUS)
        s.tx_pt = tx_pt
        s.rx_pt = rx_pt
        s.rx_pt_alt = tx_pt
        s.te_tx_pt = te_tx
        s.te_rx_pt = te_rx
        s.te_rx_pt_alt = te_tx
        s.te_clock = te_clock
        s.rtcp_mux = rtcp_mux
        if rport:
            if not s.has_remote or self._remote_sdp != (raddr, rport):
                s.latched = 0
                s.remote_rtp = rtp_addr
                s.remote_len = rtp_len
                s.remote_rtcp = rtcp_addr
                s.remote_rtcp_len = rtcp_len
            s.has_remote = 1
        else:
            s.has_remote = 0
        if srtp_choice is None:
            old_tx, old_rx = s.srtp_tx, s.srtp_rx
            s.srtp_tx = s.srtp_rx = NULL
        elif new_tx != NULL:
            old_tx, old_rx = s.srtp_tx, s.srtp_rx
            s.srtp_tx, s.srtp_rx = new_tx, new_rx
        s.can_send = can_send
        s.can_recv = can_recv
        s.no_audio_ns = <int64_t>(self._no_audio_timeout * 1e9)
        s.timeout_ns = <int64_t>(self._rtp_timeout * 1e9)
        s.rtcp_interval_ns = <int64_t>(self._rtcp_interval * 1e9)
        if not s.started:
            s.start_ns = mono_ns()
            s.first_rx_ns = 0
            s.no_audio_sent = 0
            s.next_rtcp_ns = s.start_ns + s.rtcp_interval_ns // 2
            s.started = 1
        engine_unlock()
        if old_tx != NULL:
            srtp_dealloc(old_tx)
        if old_rx != NULL:
            srtp_dealloc(old_rx)
        self._srtp_state = new_state
        self._codec = (codec, ptime, fmtp)
        self._remote = dict(remote)
        self._remote_sdp = (raddr, rport)

    # ------------------------------------------------------------ properties

    @property
    def codec(self):
        """The AudioCodec in use, or None before start()."""
        return self._codec[0] if self._codec else None

    @property
    def sample_rate(self):
        return self._codec[0].sample_rate if self._codec else None

    @property
    def srtp_active(self):
        return self.s != NULL and self.s.srtp_tx != NULL

    @property
    def srtp_suite(self):
        return self._srtp_state[0] if self._srtp_state else None

    @property
    def direction(self):
        return self._direction

    @property
    def remote_address_sdp(self):
        return self._remote_sdp

    @property
    def remote_address_received(self):
        """(ip, port) RTP really comes from, or None before any arrived."""
        if self.s == NULL:
            return None
        py_lock()
        try:
            return sockaddr_to_tuple(&self.s.remote_rtp) if self.s.latched else None
        finally:
            engine_unlock()

    def send_dtmf(self, digit, duration_ms=100):
        """Queue one DTMF digit (0-9, *, #, A-D) as RFC 4733 telephone-events."""
        cdef Stream *s = self.s
        cdef int nxt
        d = str(digit).upper()
        if len(d) != 1 or d not in _DTMF_DIGITS:
            raise ValueError("invalid DTMF digit %r" % digit)
        if s == NULL or not s.started:
            raise MediaError("the transport is not started")
        if s.te_tx_pt < 0:
            raise MediaError("the remote party did not negotiate telephone-event")
        if not 40 <= duration_ms <= 5000:
            raise ValueError("duration_ms must be within 40..5000")
        py_lock()
        nxt = (s.dtmf_qt + 1) % 64
        if nxt != s.dtmf_qh:
            s.dtmf_q[s.dtmf_qt] = _DTMF_DIGITS.index(d)
            s.dtmf_qdur[s.dtmf_qt] = duration_ms
            s.dtmf_qt = nxt
        engine_unlock()
        if nxt == s.dtmf_qh:
            raise MediaError("too many DTMF digits queued")

    def _simulate_loss(self, int every):
        """Testing aid: drop every n-th outgoing media packet (0 turns it off)."""
        if self.s != NULL:
            self.s.tx_drop_every = every

    def _on_event(self, kind, data):
        if kind == EV_DTMF:
            self.dtmf_received.append(data["digit"])

    @property
    def statistics(self):
        """Counters and state of the stream (a plain dict)."""
        cdef Stream *s = self.s
        if s == NULL:
            return {}
        py_lock()
        try:
            expected = stream_expected(s)
            lost = max(0, <int64_t>expected - <int64_t>s.received) if s.seq_init else 0
            clock = s.codec.clock_rate or 8000
            return {
                "codec": self._codec[0].name if self._codec else None,
                "sample_rate": self._codec[0].sample_rate if self._codec else None,
                "codec_internal_rate": s.codec.sample_rate,
                "clock_rate": s.codec.clock_rate,
                "ptime": self._codec[1] if self._codec else None,
                "srtp_active": s.srtp_tx != NULL,
                "srtp_suite": self.srtp_suite,
                "direction": self._direction,
                "can_send": bool(s.can_send),
                "can_recv": bool(s.can_recv),
                "tx_packets": s.tx_packets,
                "tx_bytes": s.tx_bytes,
                "rx_packets": s.rx_packets,
                "rx_bytes": s.rx_bytes,
                "rx_expected": expected,
                "rx_lost": lost,
                "rx_loss_rate": lost / expected if expected else 0.0,
                "jitter_ms": s.jitter * 1000.0 / clock,
                "rx_srtp_errors": s.rx_srtp_errors,
                "rx_short": s.rx_short,
                "rx_bad": s.rx_bad,
                "rx_unknown_pt": s.rx_unknown_pt,
                "rx_ignored": s.rx_ignored,
                "rx_foreign": s.rx_foreign,
                "rx_dtmf_packets": s.rx_dtmf,
                "rx_late": s.jb.late,
                "rx_duplicates": s.jb.duplicates,
                "plc_frames": s.plc_frames,
                "fec_frames": s.fec_frames,
                "decode_errors": s.decode_errors,
                "send_errors": s.send_errors,
                "jb_target_ms": jb_margin(&s.jb) / 1000.0,
                "jb_wait_ms": s.jb.last_wait_us / 1000.0,
                "jb_buffered": s.jb.count,
                "jb_underruns": s.jb.underruns,
                "jb_dropped": s.jb.dropped,
                "jb_skipped_silent": s.jb.skipped,
                "rtcp_sent": s.rtcp_tx,
                "rtcp_received": s.rtcp_rx,
                "rtt_ms": s.rtt_ms if s.has_rtt else None,
                "remote_fraction_lost": s.remote_fraction_lost / 256.0 if s.has_remote_report else None,
                "remote_cumulative_lost": s.remote_cumulative_lost if s.has_remote_report else None,
                "remote_jitter_ms": s.remote_jitter * 1000.0 / clock if s.has_remote_report else None,
                "local_address": (self.local_ip, self.local_port),
                "remote_address_sdp": self._remote_sdp,
                "remote_address_received": sockaddr_to_tuple(&s.remote_rtp) if s.latched else None,
                "audio_received": s.first_rx_ns != 0,
            }
        finally:
            engine_unlock()
