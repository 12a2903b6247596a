# media_base.pxi: shared C structures, the engine state, the event queue,
# G.711 tables and small helpers. Included by _media.pyx.

cdef enum:
    MAX_PORTS = 2048
    MAX_FRAME = 1920            # bridge frame: up to 48 kHz x 40 ms
    JB_SLOTS = 32               # jitter buffer slots (power of two)
    JB_SLOT_BYTES = 1280        # largest payload kept (Opus max is 1275)
    PKT_BUF = 2048
    FIFO_SAMPLES = 8192
    EVQ_SIZE = 1024
    MAX_PCM = 5760              # 120 ms at 48 kHz, the largest Opus packet
    GSM_MAX_PAYLOAD = 99        # three 33-byte GSM frames (60 ms)

cdef enum PortKind:
    PORT_FREE = 0
    PORT_DEVICE = 1
    PORT_STREAM = 2
    PORT_TONE = 3
    PORT_PLAYER = 4
    PORT_RECORDER = 5
    PORT_TAP = 6

cdef enum EventKind:
    EV_DTMF = 1
    EV_PLAYER_END = 2
    EV_NO_AUDIO = 3
    EV_RTP_TIMEOUT = 4
    EV_REMOTE_ADDR = 5
    EV_DEVICE_ERROR = 6

cdef enum:
    TAG_TIMER = 0xFFFFFFF0
    TAG_WAKE = 0xFFFFFFF1

cdef struct MediaEvent:
    int kind
    int port
    uint32_t gen
    int arg

cdef struct Port:
    int kind
    int id
    uint32_t gen
    int muted
    int *sources
    int nsources
    int cap_sources
    int nsinks
    int produced
    double tx_power             # smoothed mean square of what the port produces (1.0 = full scale)
    double rx_power             # smoothed mean square of what is mixed into it
    int16_t *frame
    int16_t *mixout
    void *obj

cdef struct Engine:
    pthread_mutex_t lock
    pthread_mutex_t evlock
    int initialized
    int running
    int sample_rate
    int frame_ms
    int frame_samples
    int epfd
    int timerfd
    int wakefd
    int evfd
    pthread_t thread
    uint64_t ticks
    uint64_t late_ticks
    int64_t now_ns
    Port *ports[MAX_PORTS]
    int port_hint               # highest port id in use + 1
    uint32_t gen_counter
    MediaEvent evq[EVQ_SIZE]
    int evhead
    int evtail
    uint64_t ev_dropped
    int32_t mix[MAX_FRAME]
    int16_t silence[MAX_FRAME]
    uint32_t rand_state

cdef Engine g_engine


class MediaError(Exception):
    """Raised for media engine configuration errors."""


cdef inline int64_t mono_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline uint32_t fast_rand() noexcept nogil:
    g_engine.rand_state = g_engine.rand_state * 1664525u + 1013904223u
    return g_engine.rand_state


cdef inline void engine_lock() noexcept nogil:
    pthread_mutex_lock(&g_engine.lock)


cdef inline void engine_unlock() noexcept nogil:
    pthread_mutex_unlock(&g_engine.lock)


cdef void push_event(int kind, Port *p, int arg) noexcept nogil:
    """Queue an event for the Python pump; called on the media thread."""
    cdef uint64_t one = 1
    cdef int nxt
    pthread_mutex_lock(&g_engine.evlock)
    nxt = (g_engine.evtail + 1) % EVQ_SIZE
    if nxt == g_engine.evhead:
        g_engine.ev_dropped += 1
    else:
        g_engine.evq[g_engine.evtail].kind = kind
        g_engine.evq[g_engine.evtail].port = p.id if p != NULL else -1
        g_engine.evq[g_engine.evtail].gen = p.gen if p != NULL else 0
        g_engine.evq[g_engine.evtail].arg = arg
        g_engine.evtail = nxt
    pthread_mutex_unlock(&g_engine.evlock)
    if g_engine.evfd >= 0:
        write(g_engine.evfd, &one, 8)


cdef inline double frame_power(const int16_t *buf, int n) noexcept nogil:
    cdef int64_t acc = 0
    cdef int i
    for i in range(n):
        acc += <int32_t>buf[i] * <int32_t>buf[i]
    return <double>acc / n / (32768.0 * 32768.0)


cdef inline int16_t clip16(int32_t v) noexcept nogil:
    if v > 32767:
        return 32767
    if v < -32768:
        return -32768
    return <int16_t>v


# ---------------------------------------------------------------------------
# Ports table (callers hold the engine lock)

cdef int port_alloc(int kind, void *obj) noexcept nogil:
    cdef int i
    cdef Port *p
    for i in range(1 if kind != PORT_DEVICE else 0, MAX_PORTS):
        if g_engine.ports[i] == NULL:
            p = <Port *>calloc(1, sizeof(Port))
            if p == NULL:
                return -1
            p.frame = <int16_t *>calloc(MAX_FRAME, sizeof(int16_t))
            p.mixout = <int16_t *>calloc(MAX_FRAME, sizeof(int16_t))
            p.kind = kind
            p.id = i
            g_engine.gen_counter += 1
            p.gen = g_engine.gen_counter
            p.obj = obj
            g_engine.ports[i] = p
            if i + 1 > g_engine.port_hint:
                g_engine.port_hint = i + 1
            return i
    return -1


cdef void port_disconnect_all(int pid) noexcept nogil:
    cdef int i, j
    cdef Port *p
    cdef Port *me = g_engine.ports[pid]
    for i in range(g_engine.port_hint):
        p = g_engine.ports[i]
        if p == NULL:
            continue
        j = 0
        while j < p.nsources:
            if p.sources[j] == pid:
                p.sources[j] = p.sources[p.nsources - 1]
                p.nsources -= 1
                me.nsinks -= 1
            else:
                j += 1
    for j in range(me.nsources):
        p = g_engine.ports[me.sources[j]]
        if p != NULL:
            p.nsinks -= 1
    me.nsources = 0


cdef void port_free(int pid) noexcept nogil:
    cdef Port *p = g_engine.ports[pid]
    if p == NULL:
        return
    port_disconnect_all(pid)
    free(p.sources)
    free(p.frame)
    free(p.mixout)
    free(p)
    g_engine.ports[pid] = NULL
    while g_engine.port_hint > 0 and g_engine.ports[g_engine.port_hint - 1] == NULL:
        g_engine.port_hint -= 1


cdef int port_connect(int src, int dst) noexcept nogil:
    cdef Port *s = g_engine.ports[src]
    cdef Port *d = g_engine.ports[dst]
    cdef int j
    cdef int *ns
    if s == NULL or d == NULL:
        return -1
    for j in range(d.nsources):
        if d.sources[j] == src:
            return 0
    if d.nsources == d.cap_sources:
        ns = <int *>realloc(d.sources, (d.cap_sources * 2 + 4) * sizeof(int))
        if ns == NULL:
            return -1
        d.sources = ns
        d.cap_sources = d.cap_sources * 2 + 4
    d.sources[d.nsources] = src
    d.nsources += 1
    s.nsinks += 1
    return 0


cdef int port_disconnect(int src, int dst) noexcept nogil:
    cdef Port *s = g_engine.ports[src]
    cdef Port *d = g_engine.ports[dst]
    cdef int j
    if s == NULL or d == NULL:
        return -1
    for j in range(d.nsources):
        if d.sources[j] == src:
            d.sources[j] = d.sources[d.nsources - 1]
            d.nsources -= 1
            s.nsinks -= 1
            return 0
    return -1


# ---------------------------------------------------------------------------
# G.711 (ITU-T G.711 mu-law and A-law), table driven

cdef int16_t ulaw_dec[256]
cdef int16_t alaw_dec[256]
cdef uint8_t ulaw_enc[16384]    # index: (sample >> 2) + 8192
cdef uint8_t alaw_enc[8192]     # index: (sample >> 3) + 4096


cdef uint8_t _ulaw_encode_calc(int s) noexcept nogil:
    cdef int sign = 0, exponent, mantissa
    if s < 0:
        s = -s
        sign = 0x80
    if s > 32635:
        s = 32635
    s += 0x84
    exponent = 7
    while exponent > 0 and not (s & (0x4000 >> (7 - exponent))):
        exponent -= 1
    mantissa = (s >> (exponent + 3)) & 0x0F
    return <uint8_t>(~(sign | (exponent << 4) | mantissa) & 0xFF)


cdef int16_t _ulaw_decode_calc(uint8_t u) noexcept nogil:
    cdef int v = (~u) & 0xFF
    cdef int sign = v & 0x80, exponent = (v >> 4) & 7, mantissa = v & 0x0F
    cdef int s = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return <int16_t>(-s if sign else s)


cdef uint8_t _alaw_encode_calc(int s) noexcept nogil:
    cdef int sign, m, seg
    if s >= 0:
        sign = 0x80
        m = s >> 3
    else:
        sign = 0
        m = (-s - 1) >> 3
    if m > 4095:
        m = 4095
    if m < 32:
        return <uint8_t>(((m >> 1) | sign) ^ 0x55)
    seg = 1
    while m >= (32 << seg):
        seg += 1
    return <uint8_t>(((seg << 4) | ((m >> seg) & 0x0F) | sign) ^ 0x55)


cdef int16_t _alaw_decode_calc(uint8_t a) noexcept nogil:
    cdef int v = a ^ 0x55
    cdef int seg = (v >> 4) & 7, mant = v & 0x0F, m
    if seg == 0:
        m = (mant << 1) + 1
    else:
        m = ((mant << 1) + 33) << (seg - 1)
    m <<= 3
    return <int16_t>(m if v & 0x80 else -m)


cdef void g711_init() noexcept nogil:
    cdef int i
    for i in range(256):
        ulaw_dec[i] = _ulaw_decode_calc(<uint8_t>i)
        alaw_dec[i] = _alaw_decode_calc(<uint8_t>i)
    for i in range(16384):
        ulaw_enc[i] = _ulaw_encode_calc((i - 8192) << 2)
    for i in range(8192):
        alaw_enc[i] = _alaw_encode_calc((i - 4096) << 3)


cdef inline uint8_t ulaw_encode(int16_t s) noexcept nogil:
    return ulaw_enc[(s >> 2) + 8192]


cdef inline uint8_t alaw_encode(int16_t s) noexcept nogil:
    return alaw_enc[(s >> 3) + 4096]
