# media_rtp.pxi: one RTP audio stream in C: receive (SRTP, validation,
# symmetric latching, jitter buffer, decode, PLC), send (encode, SRTP),
# RFC 4733 telephone-events both ways, RTCP SR/RR with RTT.

cdef struct Stream:
    Port *port
    int rtp_fd
    int rtcp_fd
    sockaddr_storage remote_rtp
    sockaddr_storage remote_rtcp
    sockaddr_storage recv_from
    socklen_t remote_len
    socklen_t remote_rtcp_len
    socklen_t recv_from_len
    int has_remote
    int latched                     # RTP arrived from remote_rtp (symmetric RTP)
    int rtcp_mux
    int started
    int can_send
    int can_recv
    CodecState codec
    int tx_pt
    int rx_pt
    int rx_pt_alt
    int te_tx_pt
    int te_rx_pt
    int te_rx_pt_alt
    int te_clock                    # telephone-event clock (normally the codec's RTP clock)
    SpeexResamplerState *rs_in      # codec rate -> bridge rate
    SpeexResamplerState *rs_out     # bridge rate -> codec rate
    int bridge_rate
    int bridge_frame
    # transmit
    uint32_t ssrc
    uint16_t seq
    uint32_t ts
    int marker_next
    int16_t txfifo[FIFO_SAMPLES]
    int txfifo_len
    # telephone-event transmit
    uint8_t dtmf_q[64]
    uint16_t dtmf_qdur[64]
    int dtmf_qh
    int dtmf_qt
    int dtmf_active
    int dtmf_event
    uint32_t dtmf_ts
    uint32_t dtmf_target
    uint32_t dtmf_elapsed
    int dtmf_end_sent
    int dtmf_first
    int dtmf_gap
    int dtmf_local_tone
    double dtmf_ph1
    double dtmf_ph2
    double dtmf_f1
    double dtmf_f2
    # receive
    JitterBuffer jb
    int16_t rxfifo[FIFO_SAMPLES]
    int rxfifo_len
    int16_t last_pcm[MAX_PCM]
    int last_len
    int plc_run
    uint8_t last_gsm[GSM_MAX_PAYLOAD]   # the last good GSM payload, decoded again to conceal a loss
    int last_gsm_len
    uint64_t late_ticks_seen        # the engine's late_ticks when this stream last played
    uint32_t rx_ssrc
    int rx_ssrc_valid
    int seq_init
    uint16_t max_seq
    uint32_t cycles
    uint32_t base_seq
    uint32_t received
    uint32_t expected_prior
    uint32_t received_prior
    double jitter                   # RFC 3550 interarrival jitter, timestamp units
    int32_t last_transit
    int transit_init
    uint32_t dtmf_rx_ts
    uint32_t dtmf_rx_dur
    int dtmf_rx_valid
    # SRTP
    srtp_t srtp_tx
    srtp_t srtp_rx
    # counters
    uint64_t tx_packets
    uint64_t tx_bytes
    uint64_t rx_packets
    uint64_t rx_bytes
    uint64_t rx_srtp_errors
    uint64_t rx_short
    uint64_t rx_bad
    uint64_t rx_unknown_pt
    uint64_t rx_ignored
    uint64_t rx_foreign             # valid RTP from a second source while the latched one is live
    uint64_t rx_dtmf
    uint64_t send_errors
    uint64_t rtcp_tx
    uint64_t rtcp_rx
    uint64_t rtcp_bad
    uint64_t plc_frames
    uint64_t fec_frames
    uint64_t decode_errors
    int tx_drop_every               # test hook: drop every n-th media packet sent
    uint64_t tx_dropped
    # timing (monotonic ns)
    int64_t start_ns
    int64_t first_rx_ns
    int64_t last_rx_ns
    int64_t no_audio_ns
    int64_t timeout_ns
    int no_audio_sent
    int timeout_sent
    int64_t rtcp_interval_ns
    int64_t next_rtcp_ns
    # RTCP state
    uint32_t last_sr_mid
    int64_t last_sr_arrival_ns
    double rtt_ms
    int has_rtt
    int remote_fraction_lost
    int32_t remote_cumulative_lost
    uint32_t remote_jitter
    int has_remote_report
    uint8_t cname[64]
    int cname_len


cdef inline void put_be16(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = (v >> 8) & 0xFF
    p[1] = v & 0xFF


cdef inline void put_be32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = (v >> 24) & 0xFF
    p[1] = (v >> 16) & 0xFF
    p[2] = (v >> 8) & 0xFF
    p[3] = v & 0xFF


cdef inline uint32_t get_be16(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 8) | p[1]


cdef inline uint32_t get_be32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline void ntp_now(uint32_t *sec, uint32_t *frac) noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    sec[0] = <uint32_t>(<int64_t>ts.tv_sec + 2208988800LL)
    frac[0] = <uint32_t>((<uint64_t>ts.tv_nsec << 32) // 1000000000)


cdef int sockaddr_equal(sockaddr_storage *a, sockaddr_storage *b) noexcept nogil:
    cdef sockaddr_in *a4
    cdef sockaddr_in *b4
    cdef sockaddr_in6 *a6
    cdef sockaddr_in6 *b6
    if a.ss_family != b.ss_family:
        return 0
    if a.ss_family == AF_INET:
        a4 = <sockaddr_in *>a
        b4 = <sockaddr_in *>b
        return a4.sin_port == b4.sin_port and a4.sin_addr.s_addr == b4.sin_addr.s_addr
    a6 = <sockaddr_in6 *>a
    b6 = <sockaddr_in6 *>b
    return a6.sin6_port == b6.sin6_port and memcmp(&a6.sin6_addr, &b6.sin6_addr, 16) == 0


cdef void sockaddr_set_port(sockaddr_storage *a, int port) noexcept nogil:
    if a.ss_family == AF_INET:
        (<sockaddr_in *>a).sin_port = htons(<uint16_t>port)
    else:
        (<sockaddr_in6 *>a).sin6_port = htons(<uint16_t>port)


cdef int sockaddr_get_port(sockaddr_storage *a) noexcept nogil:
    if a.ss_family == AF_INET:
        return ntohs((<sockaddr_in *>a).sin_port)
    return ntohs((<sockaddr_in6 *>a).sin6_port)


# ---------------------------------------------------------------------------
# transmit

cdef void stream_send_rtp(Stream *s, int pt, int marker, uint32_t ts, const uint8_t *payload,
                          int length) noexcept nogil:
    cdef uint8_t buf[PKT_BUF]
    cdef int n = 12 + length
    if not s.has_remote or length < 0 or n + 64 > PKT_BUF:
        return
    buf[0] = 0x80
    buf[1] = (pt & 0x7F) | (0x80 if marker else 0)
    put_be16(buf + 2, s.seq)
    put_be32(buf + 4, ts)
    put_be32(buf + 8, s.ssrc)
    memcpy(buf + 12, payload, length)
    s.seq = <uint16_t>(s.seq + 1)
    if s.srtp_tx != NULL:
        if srtp_protect(s.srtp_tx, buf, &n) != srtp_err_status_ok:
            s.send_errors += 1
            return
    if sendto(s.rtp_fd, buf, n, 0, <sockaddr *>&s.remote_rtp, s.remote_len) < 0:
        s.send_errors += 1
        return
    s.tx_packets += 1
    s.tx_bytes += length


cdef void dtmf_freqs(int ev, double *f1, double *f2) noexcept nogil:
    cdef int row, col
    cdef double rows[4]
    cdef double cols[4]
    rows[0] = 697; rows[1] = 770; rows[2] = 852; rows[3] = 941
    cols[0] = 1209; cols[1] = 1336; cols[2] = 1477; cols[3] = 1633
    if ev == 0:
        row, col = 3, 1
    elif 1 <= ev <= 9:
        row = (ev - 1) // 3
        col = (ev - 1) % 3
    elif ev == 10:
        row, col = 3, 0
    elif ev == 11:
        row, col = 3, 2
    elif 12 <= ev <= 15:
        row, col = ev - 12, 3
    else:
        f1[0] = 0
        f2[0] = 0
        return
    f1[0] = rows[row]
    f2[0] = cols[col]


cdef int stream_dtmf_tick(Stream *s) noexcept nogil:
    """Send this tick's telephone-event packet (RFC 4733), if a digit is due."""
    cdef uint8_t pl[4]
    cdef uint32_t dur
    cdef int i
    if not s.dtmf_active:
        if s.dtmf_gap > 0:
            s.dtmf_gap -= 1
            return 0
        if s.dtmf_qh == s.dtmf_qt:
            return 0
        s.dtmf_event = s.dtmf_q[s.dtmf_qh]
        s.dtmf_target = <uint32_t>s.dtmf_qdur[s.dtmf_qh] * <uint32_t>s.te_clock // 1000
        if s.dtmf_target > 65535:       # the duration field is 16 bits
            s.dtmf_target = 65535
        s.dtmf_qh = (s.dtmf_qh + 1) % 64
        s.dtmf_active = 1
        s.dtmf_first = 1
        s.dtmf_end_sent = 0
        s.dtmf_ts = s.ts
        s.dtmf_elapsed = 0
        s.dtmf_ph1 = s.dtmf_ph2 = 0
        dtmf_freqs(s.dtmf_event, &s.dtmf_f1, &s.dtmf_f2)
    # duration so far, in timestamp units, counting this tick
    s.dtmf_elapsed += <uint32_t>(s.te_clock * g_engine.frame_ms // 1000)
    dur = s.dtmf_elapsed
    if dur >= s.dtmf_target:
        dur = s.dtmf_target
    pl[0] = <uint8_t>s.dtmf_event
    pl[1] = 10                      # volume -10 dBm0
    if dur >= s.dtmf_target:
        pl[1] |= 0x80               # end bit
    put_be16(pl + 2, dur)
    if s.te_tx_pt >= 0 and s.can_send:
        if pl[1] & 0x80:
            for i in range(3):      # the end packet goes out three times
                stream_send_rtp(s, s.te_tx_pt, 0, s.dtmf_ts, pl, 4)
        else:
            stream_send_rtp(s, s.te_tx_pt, s.dtmf_first, s.dtmf_ts, pl, 4)
    s.dtmf_first = 0
    if pl[1] & 0x80:
        s.dtmf_active = 0
        s.dtmf_gap = 3              # ~60 ms of audio between digits
        s.marker_next = 1
    return 1


cdef void stream_put_frame(Stream *s, const int16_t *frame) noexcept nogil:
    """Bridge -> network: resample, packetize, encode, protect, send."""
    cdef uint32_t in_len, out_len
    cdef uint8_t payload[1500]
    cdef int n, fs = s.codec.frame_samples
    cdef int dtmf_busy
    if not s.started:
        return
    if s.rs_out != NULL:
        in_len = s.bridge_frame
        out_len = FIFO_SAMPLES - s.txfifo_len
        speex_resampler_process_int(s.rs_out, 0, frame, &in_len, s.txfifo + s.txfifo_len, &out_len)
        s.txfifo_len += out_len
    else:
        n = s.bridge_frame
        if n > FIFO_SAMPLES - s.txfifo_len:
            n = FIFO_SAMPLES - s.txfifo_len
        memcpy(s.txfifo + s.txfifo_len, frame, n * sizeof(int16_t))
        s.txfifo_len += n
    dtmf_busy = stream_dtmf_tick(s)
    while s.txfifo_len >= fs:
        if s.can_send and not dtmf_busy:
            n = codec_encode(&s.codec, s.txfifo, fs, payload, 1500)
            if n > 0 and s.tx_drop_every > 0 and (s.tx_packets + s.tx_dropped) % s.tx_drop_every == \
                    <uint64_t>(s.tx_drop_every - 1):
                s.tx_dropped += 1
                s.seq = <uint16_t>(s.seq + 1)
                n = 0
            if n > 0:
                stream_send_rtp(s, s.tx_pt, s.marker_next, s.ts, payload, n)
                s.marker_next = 0
        s.ts += s.codec.ts_per_packet
        s.txfifo_len -= fs
        if s.txfifo_len > 0:
            memmove(s.txfifo, s.txfifo + fs, s.txfifo_len * sizeof(int16_t))


# ---------------------------------------------------------------------------
# receive

cdef void stream_update_seq(Stream *s, uint16_t seq) noexcept nogil:
    cdef uint16_t udelta
    if not s.seq_init:
        s.seq_init = 1
        s.base_seq = seq
        s.max_seq = seq
        s.cycles = 0
        s.received = 1
        s.expected_prior = 0
        s.received_prior = 0
        return
    udelta = <uint16_t>(seq - s.max_seq)
    if udelta < 3000:
        if seq < s.max_seq:
            s.cycles += 65536
        s.max_seq = seq
    elif udelta <= 65536 - 100:
        # a big jump: the sender restarted, start counting again
        s.base_seq = seq
        s.max_seq = seq
        s.cycles = 0
        s.received = 0
        s.expected_prior = 0
        s.received_prior = 0
    s.received += 1


cdef inline uint32_t stream_expected(Stream *s) noexcept nogil:
    if not s.seq_init:
        return 0
    return s.cycles + s.max_seq - s.base_seq + 1


cdef int stream_latch(Stream *s, sockaddr_storage *addr, socklen_t alen, int64_t now) noexcept nogil:
    """Symmetric RTP: send to where valid RTP really comes from.

    Returns 0 when the packet must be dropped: it comes from a second source
    while the latched one sent within the last second.
    """
    if s.has_remote and sockaddr_equal(addr, &s.remote_rtp):
        s.latched = 1
        return 1
    if s.latched and now - s.last_rx_ns < 1000000000:
        s.rx_foreign += 1
        return 0
    s.latched = 1
    memcpy(&s.remote_rtp, addr, alen)
    s.remote_len = alen
    if s.rtcp_mux:
        memcpy(&s.remote_rtcp, addr, alen)
    else:
        memcpy(&s.remote_rtcp, addr, alen)
        sockaddr_set_port(&s.remote_rtcp, sockaddr_get_port(addr) + 1)
    s.remote_rtcp_len = alen
    s.has_remote = 1
    push_event(EV_REMOTE_ADDR, s.port, sockaddr_get_port(addr))
    return 1


cdef void stream_rtp_in(Stream *s, uint8_t *buf, int n, sockaddr_storage *addr, socklen_t alen,
                        int64_t now) noexcept nogil:
    cdef int hdr, pt, pad, plen
    cdef uint16_t seq
    cdef uint32_t ts, ssrc, arrival
    cdef int32_t transit, d
    cdef uint32_t dur, inc
    if n < 12:
        s.rx_short += 1
        return
    if (buf[0] >> 6) != 2:
        s.rx_bad += 1
        return
    if not s.started:
        s.rx_ignored += 1
        return
    if s.srtp_rx != NULL:
        if srtp_unprotect(s.srtp_rx, buf, &n) != srtp_err_status_ok:
            s.rx_srtp_errors += 1
            return
    hdr = 12 + 4 * (buf[0] & 0x0F)
    if buf[0] & 0x10:
        if hdr + 4 > n:
            s.rx_bad += 1
            return
        hdr += 4 + 4 * <int>get_be16(buf + hdr + 2)
    if hdr > n:
        s.rx_bad += 1
        return
    if buf[0] & 0x20:
        pad = buf[n - 1]
        if pad == 0 or hdr + pad > n:
            s.rx_bad += 1
            return
        n -= pad
    pt = buf[1] & 0x7F
    seq = <uint16_t>get_be16(buf + 2)
    ts = get_be32(buf + 4)
    ssrc = get_be32(buf + 8)
    plen = n - hdr
    if pt != s.rx_pt and pt != s.rx_pt_alt and pt != s.te_rx_pt and pt != s.te_rx_pt_alt:
        s.rx_unknown_pt += 1
        return
    if plen <= 0:
        s.rx_bad += 1
        return
    if not stream_latch(s, addr, alen, now):
        return
    if s.rx_ssrc_valid and ssrc != s.rx_ssrc:
        jb_reset(&s.jb)
        s.seq_init = 0
        s.transit_init = 0
        s.dtmf_rx_valid = 0
    s.rx_ssrc = ssrc
    s.rx_ssrc_valid = 1
    stream_update_seq(s, seq)
    s.rx_packets += 1
    s.rx_bytes += plen
    if s.first_rx_ns == 0:
        s.first_rx_ns = now
    s.last_rx_ns = now
    s.timeout_sent = 0
    if pt == s.te_rx_pt or pt == s.te_rx_pt_alt:
        s.rx_dtmf += 1
        if plen < 4:
            return
        dur = get_be16(buf + hdr + 2)
        if not s.dtmf_rx_valid or ts != s.dtmf_rx_ts:
            s.dtmf_rx_valid = 1
            s.dtmf_rx_ts = ts
            s.dtmf_rx_dur = 0
            if s.can_recv and buf[hdr] <= 16:
                push_event(EV_DTMF, s.port, buf[hdr])
        # the event packet takes the place of audio in the sequence: play as
        # much silence as the event's duration grew (none for repeated ends)
        inc = dur - s.dtmf_rx_dur if dur > s.dtmf_rx_dur else 0
        if dur > s.dtmf_rx_dur:
            s.dtmf_rx_dur = dur
        if s.can_recv and s.te_clock > 0:
            jb_put(&s.jb, seq, ts, NULL, -1 - <int>((<uint64_t>inc * s.codec.sample_rate) // s.te_clock), now)
        return
    # RFC 3550 interarrival jitter
    arrival = <uint32_t>((<uint64_t>now * <uint64_t>s.codec.clock_rate) // 1000000000)
    transit = <int32_t>(arrival - ts)
    if s.transit_init:
        d = transit - s.last_transit
        if d < 0:
            d = -d
        s.jitter += (d - s.jitter) / 16.0
    s.last_transit = transit
    s.transit_init = 1
    if s.can_recv:
        jb_put(&s.jb, seq, ts, buf + hdr, plen, now)


cdef void stream_conceal(Stream *s, int n) noexcept nogil:
    """Fill n samples of a lost packet: Opus FEC/PLC, else fading repetition."""
    cdef JbSlot *nxt
    cdef int k, i
    cdef double gain
    if n <= 0 or n > MAX_PCM:
        n = s.codec.frame_samples
    if s.rxfifo_len + n > FIFO_SAMPLES:
        return
    if s.codec.id == C_OPUS:
        nxt = jb_peek(&s.jb)
        if nxt != NULL and nxt.len > 0:
            k = codec_conceal(&s.codec, s.rxfifo + s.rxfifo_len, n, nxt.data, nxt.len)
            s.fec_frames += 1
        else:
            k = codec_conceal(&s.codec, s.rxfifo + s.rxfifo_len, n, NULL, 0)
            s.plc_frames += 1
        if k > 0:
            s.rxfifo_len += k
            return
    s.plc_frames += 1
    s.plc_run += 1
    gain = 1.0 - 0.25 * s.plc_run
    if gain < 0 or s.last_len <= 0:
        gain = 0
    if s.codec.id == C_GSM and s.last_gsm_len > 0:
        # GSM 06.11 substitution: decode the last good frame again, so that the decoder's
        # long-term predictor state carries on (skipping it leaves the level sagging for good)
        k = codec_decode(&s.codec, s.last_gsm, s.last_gsm_len, s.rxfifo + s.rxfifo_len, n)
        if k > 0:
            for i in range(k):
                s.rxfifo[s.rxfifo_len + i] = <int16_t>(s.rxfifo[s.rxfifo_len + i] * gain)
            s.rxfifo_len += k
            return
    for i in range(n):
        s.rxfifo[s.rxfifo_len + i] = <int16_t>(s.last_pcm[i % s.last_len] * gain) if gain > 0 else 0
    s.rxfifo_len += n


cdef int stream_get_frame(Stream *s, int16_t *out) noexcept nogil:
    """Network -> bridge: one bridge frame from the jitter buffer; 0 when silent."""
    cdef int need, r, k, i, silent
    cdef int got = 0
    cdef JbSlot *slot
    cdef uint32_t in_len, out_len
    cdef double w1, w2, amp
    if not s.started or not s.can_recv:
        return 0
    need = s.bridge_frame * s.codec.sample_rate // s.bridge_rate
    if s.late_ticks_seen != g_engine.late_ticks:
        # the media clock skipped ticks (the thread was held up): what arrived for them is
        # stale, and playing it would add their length to the delay for good
        jb_discard_skipped(&s.jb, <int>(g_engine.late_ticks - s.late_ticks_seen) * g_engine.frame_ms * 1000
                           // s.jb.ptime_us)
        s.late_ticks_seen = g_engine.late_ticks
    while s.rxfifo_len < need:
        r = jb_get(&s.jb, g_engine.now_ns, &slot)
        if r == JB_OK:
            if slot.len < 0:
                k = -1 - slot.len       # telephone-event: silence for its duration
                if k > FIFO_SAMPLES - s.rxfifo_len:
                    k = FIFO_SAMPLES - s.rxfifo_len
                memset(s.rxfifo + s.rxfifo_len, 0, k * sizeof(int16_t))
                s.rxfifo_len += k
                continue
            k = codec_decode(&s.codec, slot.data, slot.len, s.rxfifo + s.rxfifo_len,
                             FIFO_SAMPLES - s.rxfifo_len)
            if k <= 0:
                s.decode_errors += 1
                stream_conceal(s, s.last_len)
                continue
            if s.jb.shrink > 0 and jb_peek(&s.jb) != NULL:
                # the buffer holds more delay than the jitter needs: play the next packet in
                # this one's place, at once if this one is silent, else (60 ms of surplus or
                # more) after waiting a while for a silent one, and then the whole surplus at
                # once; the decoder has seen it either way, so its state stays whole
                silent = frame_power(s.rxfifo + s.rxfifo_len, k) < JB_SILENT_POWER
                if s.jb.shrink_age >= JB_SHRINK_PATIENCE and s.jb.shrink * s.jb.ptime_us >= JB_AUDIBLE_SURPLUS_US:
                    s.jb.forcing = 1
                if silent or s.jb.forcing:
                    jb_removed(&s.jb, silent)
                    continue
                if s.jb.shrink_age < JB_SHRINK_PATIENCE:
                    s.jb.shrink_age += 1
            if s.codec.id == C_GSM and slot.len <= GSM_MAX_PAYLOAD:
                memcpy(s.last_gsm, slot.data, slot.len)
                s.last_gsm_len = slot.len
            memcpy(s.last_pcm, s.rxfifo + s.rxfifo_len, (k if k < MAX_PCM else MAX_PCM) * sizeof(int16_t))
            s.last_len = k if k < MAX_PCM else MAX_PCM
            s.plc_run = 0
            s.rxfifo_len += k
            got = 1
        elif r == JB_LOST:
            stream_conceal(s, s.last_len)
            got = 1
        elif r == JB_UNDERRUN and s.jb.empty_run <= 3 and s.last_len > 0:
            # late or lost, we cannot tell yet: conceal either way (a late packet then plays
            # one frame later; a lost one was replaced by this), fading to silence after 60 ms
            stream_conceal(s, s.last_len)
            got = 1
        else:
            break
    if s.rxfifo_len == 0 and not s.dtmf_active:
        return 0
    if s.rxfifo_len < need:
        memset(s.rxfifo + s.rxfifo_len, 0, (need - s.rxfifo_len) * sizeof(int16_t))
        s.rxfifo_len = need
    if s.rs_in != NULL:
        in_len = need
        out_len = s.bridge_frame
        speex_resampler_process_int(s.rs_in, 0, s.rxfifo, &in_len, out, &out_len)
        if <int>out_len < s.bridge_frame:
            memset(out + out_len, 0, (s.bridge_frame - out_len) * sizeof(int16_t))
        need = in_len
    else:
        memcpy(out, s.rxfifo, s.bridge_frame * sizeof(int16_t))
        need = s.bridge_frame
    s.rxfifo_len -= need
    if s.rxfifo_len > 0:
        memmove(s.rxfifo, s.rxfifo + need, s.rxfifo_len * sizeof(int16_t))
    if s.dtmf_active and s.dtmf_local_tone and s.dtmf_f1 > 0:
        w1 = 2 * 3.141592653589793 * s.dtmf_f1 / s.bridge_rate
        w2 = 2 * 3.141592653589793 * s.dtmf_f2 / s.bridge_rate
        amp = 32768 * 0.1
        for i in range(s.bridge_frame):
            out[i] = clip16(out[i] + <int32_t>(amp * (sin(s.dtmf_ph1) + sin(s.dtmf_ph2))))
            s.dtmf_ph1 += w1
            s.dtmf_ph2 += w2
        while s.dtmf_ph1 > 6.283185307179586:
            s.dtmf_ph1 -= 6.283185307179586
        while s.dtmf_ph2 > 6.283185307179586:
            s.dtmf_ph2 -= 6.283185307179586
        got = 1
    return 1
