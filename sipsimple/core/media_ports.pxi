# media_ports.pxi: bridge ports other than streams and the sound device:
# tone generator, WAV player, WAV recorder and the numpy tap.

cdef struct Tone:
    int active
    int nfreq
    double freq[4]
    double phase[4]
    double amp


cdef int tone_get_frame(Tone *t, int16_t *out, int n, int rate) noexcept nogil:
    cdef int i, k
    cdef double v, w
    if not t.active or t.nfreq == 0:
        return 0
    for i in range(n):
        v = 0
        for k in range(t.nfreq):
            v += sin(t.phase[k])
            t.phase[k] += 2 * 3.141592653589793 * t.freq[k] / rate
        out[i] = clip16(<int32_t>(v * t.amp))
    for k in range(t.nfreq):
        while t.phase[k] > 6.283185307179586:
            t.phase[k] -= 6.283185307179586
    return 1


cdef struct Player:
    FILE *f
    long data_start
    long data_len
    long pos
    int channels
    int rate
    int loop
    int playing
    int ended
    SpeexResamplerState *rs
    int16_t fifo[FIFO_SAMPLES]
    int fifo_len


cdef int player_get_frame(Player *pl, int16_t *out, int n, int bridge_rate) noexcept nogil:
    cdef int16_t raw[4096]
    cdef int16_t mono[2048]
    cdef int frames, want, i, got
    cdef size_t r
    cdef uint32_t in_len, out_len
    if not pl.playing:
        return 0
    while pl.fifo_len < n and not pl.ended:
        want = pl.rate * g_engine.frame_ms // 1000
        if want > 2048:
            want = 2048
        if (pl.data_len - pl.pos) < want * 2 * pl.channels:
            want = <int>((pl.data_len - pl.pos) // (2 * pl.channels))
        if want <= 0:
            if pl.loop and pl.data_len >= 2 * pl.channels:
                fseek(pl.f, pl.data_start, SEEK_SET)
                pl.pos = 0
                continue
            pl.ended = 1
            break
        r = fread(raw, 2 * pl.channels, want, pl.f)
        if r == 0:
            pl.data_len = pl.pos
            continue
        frames = <int>r
        pl.pos += frames * 2 * pl.channels
        if pl.channels == 1:
            memcpy(mono, raw, frames * sizeof(int16_t))
        else:
            for i in range(frames):
                mono[i] = <int16_t>((<int32_t>raw[2 * i] + raw[2 * i + 1]) // 2)
        if pl.rs != NULL:
            in_len = frames
            out_len = FIFO_SAMPLES - pl.fifo_len
            speex_resampler_process_int(pl.rs, 0, mono, &in_len, pl.fifo + pl.fifo_len, &out_len)
            pl.fifo_len += out_len
        else:
            got = frames if frames < FIFO_SAMPLES - pl.fifo_len else FIFO_SAMPLES - pl.fifo_len
            memcpy(pl.fifo + pl.fifo_len, mono, got * sizeof(int16_t))
            pl.fifo_len += got
    if pl.fifo_len == 0:
        pl.playing = 0
        return -1                   # finished
    got = n if pl.fifo_len >= n else pl.fifo_len
    memcpy(out, pl.fifo, got * sizeof(int16_t))
    if got < n:
        memset(out + got, 0, (n - got) * sizeof(int16_t))
    pl.fifo_len -= got
    if pl.fifo_len > 0:
        memmove(pl.fifo, pl.fifo + got, pl.fifo_len * sizeof(int16_t))
    return 1


cdef struct Recorder:
    FILE *f
    uint32_t data_bytes
    int rate
    int ticks
    int header_ticks            # rewrite the header (sizes) this often
    int active
    int error


cdef void wav_header(uint8_t *h, int rate, uint32_t data_bytes) noexcept nogil:
    memcpy(h, b"RIFF", 4)
    h[4] = (36 + data_bytes) & 0xFF
    h[5] = ((36 + data_bytes) >> 8) & 0xFF
    h[6] = ((36 + data_bytes) >> 16) & 0xFF
    h[7] = ((36 + data_bytes) >> 24) & 0xFF
    memcpy(h + 8, b"WAVEfmt ", 8)
    h[16] = 16; h[17] = 0; h[18] = 0; h[19] = 0
    h[20] = 1; h[21] = 0            # PCM
    h[22] = 1; h[23] = 0            # mono
    h[24] = rate & 0xFF; h[25] = (rate >> 8) & 0xFF; h[26] = (rate >> 16) & 0xFF; h[27] = 0
    h[28] = (rate * 2) & 0xFF; h[29] = ((rate * 2) >> 8) & 0xFF; h[30] = ((rate * 2) >> 16) & 0xFF; h[31] = 0
    h[32] = 2; h[33] = 0            # block align
    h[34] = 16; h[35] = 0           # bits per sample
    memcpy(h + 36, b"data", 4)
    h[40] = data_bytes & 0xFF
    h[41] = (data_bytes >> 8) & 0xFF
    h[42] = (data_bytes >> 16) & 0xFF
    h[43] = (data_bytes >> 24) & 0xFF


cdef void recorder_sync(Recorder *r) noexcept nogil:
    """Rewrite the sizes in the header and flush, so the file is valid as it is."""
    cdef uint8_t h[44]
    if r.f == NULL:
        return
    wav_header(h, r.rate, r.data_bytes)
    fflush(r.f)
    if fseek(r.f, 0, SEEK_SET) == 0:
        fwrite(h, 1, 44, r.f)
    fseek(r.f, 0, SEEK_END)
    fflush(r.f)


cdef void recorder_put_frame(Recorder *r, const int16_t *buf, int n) noexcept nogil:
    if not r.active or r.f == NULL or r.error:
        return
    if fwrite(buf, sizeof(int16_t), n, r.f) != <size_t>n:
        r.error = 1
        return
    r.data_bytes += n * 2
    r.ticks += 1
    if r.ticks >= r.header_ticks:
        r.ticks = 0
        recorder_sync(r)


cdef struct Tap:
    pthread_mutex_t lock
    int16_t *rx
    int rx_cap
    int rx_head
    int rx_len
    int16_t *tx
    int tx_cap
    int tx_head
    int tx_len
    uint64_t rx_overflow
    uint64_t tx_underflow
    uint64_t rx_total           # samples ever put into rx (the index after the newest)
    uint64_t *stamp_end         # a ring, one entry per frame put: rx_total after that frame...
    int64_t *stamp_ns           # ...and the media tick that put it (CLOCK_MONOTONIC ns)
    int stamp_cap
    int stamp_pos


cdef void ring_push(int16_t *ring, int cap, int *head, int *length, const int16_t *src, int n) noexcept nogil:
    """Append n samples; the oldest are overwritten when full."""
    cdef int i, pos
    if n > cap:
        src += n - cap
        n = cap
    pos = (head[0] + length[0]) % cap
    for i in range(n):
        ring[pos] = src[i]
        pos += 1
        if pos == cap:
            pos = 0
    length[0] += n
    if length[0] > cap:
        head[0] = (head[0] + length[0] - cap) % cap
        length[0] = cap


cdef int ring_pop(int16_t *ring, int cap, int *head, int *length, int16_t *dst, int n) noexcept nogil:
    cdef int i, k = n if n < length[0] else length[0]
    for i in range(k):
        dst[i] = ring[head[0]]
        head[0] += 1
        if head[0] == cap:
            head[0] = 0
    length[0] -= k
    return k


cdef void tap_put_frame(Tap *t, const int16_t *buf, int n) noexcept nogil:
    pthread_mutex_lock(&t.lock)
    if t.rx_len + n > t.rx_cap:
        t.rx_overflow += 1
    ring_push(t.rx, t.rx_cap, &t.rx_head, &t.rx_len, buf, n)
    t.rx_total += n
    t.stamp_end[t.stamp_pos] = t.rx_total
    t.stamp_ns[t.stamp_pos] = g_engine.now_ns
    t.stamp_pos = (t.stamp_pos + 1) % t.stamp_cap
    pthread_mutex_unlock(&t.lock)


cdef void tap_sample_times(Tap *t, uint64_t first, int n, int64_t *times, int frame, int rate) noexcept nogil:
    """When the bridge delivered samples first .. first + n - 1 (tap lock held): the tick
    of each one's frame plus its offset in the frame; 0 when that is no longer known."""
    cdef int e, idx, j = 0
    cdef uint64_t end
    for e in range(t.stamp_cap):
        idx = (t.stamp_pos + e) % t.stamp_cap        # oldest first
        end = t.stamp_end[idx]
        if end == 0 or end <= first:
            continue
        while j < n and first + j < end:
            times[j] = t.stamp_ns[idx] + <int64_t>(first + j + frame - end) * 1000000000 // rate
            j += 1
        if j == n:
            break
    while j < n:
        times[j] = 0
        j += 1


cdef int tap_get_frame(Tap *t, int16_t *out, int n) noexcept nogil:
    cdef int k
    pthread_mutex_lock(&t.lock)
    k = ring_pop(t.tx, t.tx_cap, &t.tx_head, &t.tx_len, out, n)
    pthread_mutex_unlock(&t.lock)
    if k == 0:
        return 0
    if k < n:
        t.tx_underflow += 1
        memset(out + k, 0, (n - k) * sizeof(int16_t))
    return 1
