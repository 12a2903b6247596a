# media_rtcp.pxi: RTCP (RFC 3550) sender/receiver reports with RTT, the
# per-tick stream timers (RTCP schedule, no-audio and RTP timeout) and the
# socket read loop of a stream.

cdef void stream_send_rtcp(Stream *s, int64_t now) noexcept nogil:
    cdef uint8_t buf[PKT_BUF]
    cdef int n = 0, rc, start, words, i
    cdef uint32_t sec, frac, expected, exp_int, rec_int, lost, fraction, dlsr
    cdef int32_t cum
    cdef int64_t since
    if not s.has_remote:
        return
    rc = 1 if s.seq_init else 0
    ntp_now(&sec, &frac)
    if s.tx_packets > 0:
        buf[0] = 0x80 | rc
        buf[1] = 200
        put_be32(buf + 4, s.ssrc)
        put_be32(buf + 8, sec)
        put_be32(buf + 12, frac)
        put_be32(buf + 16, s.ts)
        put_be32(buf + 20, <uint32_t>s.tx_packets)
        put_be32(buf + 24, <uint32_t>s.tx_bytes)
        n = 28
    else:
        buf[0] = 0x80 | rc
        buf[1] = 201
        put_be32(buf + 4, s.ssrc)
        n = 8
    if rc:
        expected = stream_expected(s)
        exp_int = expected - s.expected_prior
        rec_int = s.received - s.received_prior
        s.expected_prior = expected
        s.received_prior = s.received
        fraction = 0
        if exp_int > 0 and exp_int > rec_int:
            fraction = ((exp_int - rec_int) << 8) // exp_int
            if fraction > 255:
                fraction = 255
        cum = <int32_t>(expected - s.received)
        if cum < 0:
            cum = 0
        if cum > 0x7FFFFF:
            cum = 0x7FFFFF
        put_be32(buf + n, s.rx_ssrc)
        put_be32(buf + n + 4, (fraction << 24) | (<uint32_t>cum & 0xFFFFFF))
        put_be32(buf + n + 8, s.cycles + s.max_seq)
        put_be32(buf + n + 12, <uint32_t>s.jitter)
        put_be32(buf + n + 16, s.last_sr_mid)
        dlsr = 0
        if s.last_sr_arrival_ns > 0:
            since = now - s.last_sr_arrival_ns
            dlsr = <uint32_t>((since * 65536) // 1000000000)
        put_be32(buf + n + 20, dlsr)
        n += 24
    put_be16(buf + 2, n // 4 - 1)
    # SDES with CNAME
    start = n
    buf[n] = 0x81
    buf[n + 1] = 202
    put_be32(buf + n + 4, s.ssrc)
    buf[n + 8] = 1
    buf[n + 9] = <uint8_t>s.cname_len
    memcpy(buf + n + 10, s.cname, s.cname_len)
    n += 10 + s.cname_len
    buf[n] = 0
    n += 1
    while n % 4:
        buf[n] = 0
        n += 1
    words = (n - start) // 4 - 1
    put_be16(buf + start + 2, words)
    if s.srtp_tx != NULL:
        if srtp_protect_rtcp(s.srtp_tx, buf, &n) != srtp_err_status_ok:
            s.send_errors += 1
            return
    if sendto(s.rtcp_fd if not s.rtcp_mux else s.rtp_fd, buf, n, 0,
              <sockaddr *>&s.remote_rtcp, s.remote_rtcp_len) >= 0:
        s.rtcp_tx += 1
    else:
        s.send_errors += 1


cdef void stream_send_bye(Stream *s) noexcept nogil:
    """RTCP BYE (in an empty RR compound) when a started stream stops."""
    cdef uint8_t buf[64]
    cdef int n = 16
    if not s.has_remote or not s.started:
        return
    buf[0] = 0x80
    buf[1] = 201
    put_be16(buf + 2, 1)
    put_be32(buf + 4, s.ssrc)
    buf[8] = 0x81
    buf[9] = 203
    put_be16(buf + 10, 1)
    put_be32(buf + 12, s.ssrc)
    if s.srtp_tx != NULL:
        if srtp_protect_rtcp(s.srtp_tx, buf, &n) != srtp_err_status_ok:
            return
    sendto(s.rtcp_fd if not s.rtcp_mux else s.rtp_fd, buf, n, 0, <sockaddr *>&s.remote_rtcp, s.remote_rtcp_len)


cdef void stream_report_block(Stream *s, const uint8_t *b, int64_t now) noexcept nogil:
    cdef uint32_t lsr, dlsr, sec, frac, a
    cdef int32_t rtt
    cdef int32_t cum
    if get_be32(b) != s.ssrc:
        return
    s.remote_fraction_lost = b[4]
    cum = <int32_t>(get_be32(b + 4) & 0xFFFFFF)
    if cum & 0x800000:
        cum -= 0x1000000
    s.remote_cumulative_lost = cum
    s.remote_jitter = get_be32(b + 12)
    s.has_remote_report = 1
    lsr = get_be32(b + 16)
    dlsr = get_be32(b + 20)
    if lsr != 0:
        ntp_now(&sec, &frac)
        a = (sec << 16) | (frac >> 16)
        rtt = <int32_t>(a - lsr - dlsr)
        if rtt < 0:
            rtt = 0
        s.rtt_ms = rtt * 1000.0 / 65536.0
        s.has_rtt = 1


cdef void stream_rtcp_in(Stream *s, uint8_t *buf, int n, sockaddr_storage *addr, socklen_t alen,
                         int64_t now) noexcept nogil:
    cdef int off = 0, plen, pt, rc, i, base
    if n < 8 or (buf[0] >> 6) != 2:
        s.rtcp_bad += 1
        return
    if not s.started:
        return
    if s.srtp_rx != NULL:
        if srtp_unprotect_rtcp(s.srtp_rx, buf, &n) != srtp_err_status_ok:
            s.rx_srtp_errors += 1
            return
    while off + 4 <= n:
        if (buf[off] >> 6) != 2:
            s.rtcp_bad += 1
            return
        rc = buf[off] & 0x1F
        pt = buf[off + 1]
        plen = (<int>get_be16(buf + off + 2) + 1) * 4
        if off + plen > n:
            s.rtcp_bad += 1
            return
        if pt == 200 and plen >= 28:
            s.last_sr_mid = (get_be32(buf + off + 8) << 16) | (get_be32(buf + off + 12) >> 16)
            s.last_sr_arrival_ns = now
            base = off + 28
        elif pt == 201 and plen >= 8:
            base = off + 8
        else:
            base = -1
        if base >= 0:
            for i in range(rc):
                if base + 24 * (i + 1) <= off + plen:
                    stream_report_block(s, buf + base + 24 * i, now)
        off += plen
    s.rtcp_rx += 1
    if not sockaddr_equal(addr, &s.remote_rtcp):
        memcpy(&s.remote_rtcp, addr, alen)
        s.remote_rtcp_len = alen


cdef void stream_readable(Stream *s, int is_rtcp) noexcept nogil:
    cdef uint8_t buf[PKT_BUF]
    cdef sockaddr_storage addr
    cdef socklen_t alen
    cdef ssize_t n
    cdef int i
    cdef int fd = s.rtcp_fd if is_rtcp else s.rtp_fd
    cdef int64_t now = mono_ns()
    for i in range(64):
        alen = sizeof(sockaddr_storage)
        n = recvfrom(fd, buf, PKT_BUF - 64, MSG_DONTWAIT, <sockaddr *>&addr, &alen)
        if n < 0:
            return
        if is_rtcp or (n >= 2 and 192 <= buf[1] <= 223):
            stream_rtcp_in(s, buf, <int>n, &addr, alen, now)
        else:
            stream_rtp_in(s, buf, <int>n, &addr, alen, now)


cdef void stream_tick(Stream *s, int64_t now) noexcept nogil:
    if not s.started:
        return
    if s.rtcp_interval_ns > 0 and now >= s.next_rtcp_ns:
        stream_send_rtcp(s, now)
        # randomized interval (0.5 .. 1.5 x), RFC 3550 6.2
        s.next_rtcp_ns = now + s.rtcp_interval_ns // 2 + <int64_t>(fast_rand() % 1000) * s.rtcp_interval_ns // 1000
    if s.can_recv and not s.no_audio_sent and s.first_rx_ns == 0 and s.no_audio_ns > 0 \
            and now - s.start_ns >= s.no_audio_ns:
        s.no_audio_sent = 1
        push_event(EV_NO_AUDIO, s.port, 0)
    if s.can_recv and s.timeout_ns > 0 and not s.timeout_sent and s.last_rx_ns > 0 \
            and now - s.last_rx_ns >= s.timeout_ns:
        s.timeout_sent = 1
        push_event(EV_RTP_TIMEOUT, s.port, 0)
