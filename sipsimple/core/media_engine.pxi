# media_engine.pxi: the media thread (epoll over the RTP/RTCP sockets plus a
# timerfd for the 20 ms media clock), the conference bridge tick, and the
# Python-facing MediaEngine with its event pump.

cdef inline void py_lock() noexcept:
    with nogil:
        pthread_mutex_lock(&g_engine.lock)


cdef int port_get_frame(Port *p, int16_t *buf, int n) noexcept nogil:
    cdef int r
    if p.kind == PORT_STREAM:
        return stream_get_frame(<Stream *>p.obj, buf)
    elif p.kind == PORT_TONE:
        return tone_get_frame(<Tone *>p.obj, buf, n, g_engine.sample_rate)
    elif p.kind == PORT_PLAYER:
        r = player_get_frame(<Player *>p.obj, buf, n, g_engine.sample_rate)
        if r < 0:
            push_event(EV_PLAYER_END, p, 0)
            return 0
        return r
    elif p.kind == PORT_TAP:
        return tap_get_frame(<Tap *>p.obj, buf, n)
    elif p.kind == PORT_DEVICE:
        return device_get_frame(buf, n)
    return 0


cdef int port_has_put(Port *p) noexcept nogil:
    return p.kind == PORT_STREAM or p.kind == PORT_RECORDER or p.kind == PORT_TAP or p.kind == PORT_DEVICE


cdef void port_put_frame(Port *p, const int16_t *buf, int n) noexcept nogil:
    if p.kind == PORT_STREAM:
        stream_put_frame(<Stream *>p.obj, buf)
        stream_tick(<Stream *>p.obj, g_engine.now_ns)
    elif p.kind == PORT_RECORDER:
        recorder_put_frame(<Recorder *>p.obj, buf, n)
    elif p.kind == PORT_TAP:
        tap_put_frame(<Tap *>p.obj, buf, n)
    elif p.kind == PORT_DEVICE:
        device_put_frame(buf, n)


cdef void engine_tick() noexcept nogil:
    """One period of the conference bridge: every port produces, every port consumes."""
    cdef int i, j, k, n = g_engine.frame_samples, nprod
    cdef Port *p
    cdef Port *src
    cdef Port *only
    cdef const int16_t *buf
    cdef double pw
    g_engine.now_ns = mono_ns()
    g_engine.ticks += 1
    for i in range(g_engine.port_hint):
        p = g_engine.ports[i]
        if p == NULL:
            continue
        p.produced = port_get_frame(p, p.frame, n)
        if p.produced and p.muted:
            p.produced = 0
        pw = frame_power(p.frame, n) if p.produced else 0.0
        p.tx_power = 0.6 * p.tx_power + 0.4 * pw
    for i in range(g_engine.port_hint):
        p = g_engine.ports[i]
        if p == NULL or not port_has_put(p):
            continue
        nprod = 0
        only = NULL
        for j in range(p.nsources):
            src = g_engine.ports[p.sources[j]]
            if src != NULL and src.produced:
                nprod += 1
                only = src
        if nprod == 0:
            buf = g_engine.silence
        elif nprod == 1:
            buf = only.frame
        else:
            for k in range(n):
                g_engine.mix[k] = 0
            for j in range(p.nsources):
                src = g_engine.ports[p.sources[j]]
                if src != NULL and src.produced:
                    for k in range(n):
                        g_engine.mix[k] += src.frame[k]
            for k in range(n):
                p.mixout[k] = clip16(g_engine.mix[k])
            buf = p.mixout
        pw = frame_power(buf, n) if nprod else 0.0
        p.rx_power = 0.6 * p.rx_power + 0.4 * pw
        port_put_frame(p, buf, n)


cdef int engine_handle(epoll_event *evs, int n) noexcept nogil:
    """Serve the ready descriptors (engine lock held); returns the media clock ticks due."""
    cdef int i, pid, ticks = 0
    cdef uint64_t tag, expirations
    cdef Port *p
    for i in range(n if n > 0 else 0):
        tag = evs[i].data.u64
        if tag == TAG_TIMER:
            expirations = 0
            if read(g_engine.timerfd, &expirations, 8) == 8:
                ticks += <int>expirations
        elif tag == TAG_WAKE:
            read(g_engine.wakefd, &expirations, 8)
        else:
            pid = <int>(tag & 0xFFFF)
            p = g_engine.ports[pid] if pid < MAX_PORTS else NULL
            if p != NULL and p.kind == PORT_STREAM and p.gen == <uint32_t>(tag >> 32):
                stream_readable(<Stream *>p.obj, <int>((tag >> 16) & 1))
    return ticks


cdef int engine_drain(epoll_event *evs, int maxevents) noexcept nogil:
    """Serve every descriptor ready now, however many (engine lock held); returns ticks due.

    A tick must see every packet that arrived before it: one epoll_wait returns
    at most maxevents descriptors, and with hundreds of streams the rest would
    wait a whole tick (late packets, needless jitter-buffer delay).
    """
    cdef int n, rounds = 0, ticks = 0
    while rounds < 64:
        n = epoll_wait(g_engine.epfd, evs, maxevents, 0)
        ticks += engine_handle(evs, n)
        if n < maxevents:
            break
        rounds += 1
    return ticks


cdef void *engine_thread(void *arg) noexcept nogil:
    cdef epoll_event evs[128]
    cdef int n, pending = 0
    while g_engine.running:
        # one tick per turn, the lock released in between: behind schedule (pending ticks),
        # the turns come back to back, yet every packet sent meanwhile (by our own ticks,
        # by a peer in this process) is read before the next tick, and Python gets a turn
        n = epoll_wait(g_engine.epfd, evs, 128, 0 if pending > 0 else 100)
        pthread_mutex_lock(&g_engine.lock)
        pending += engine_handle(evs, n)
        if n == 128 or pending > 0:
            pending += engine_drain(evs, 128)
        if pending > 5:
            g_engine.late_ticks += pending - 5
            pending = 5
        if pending > 0 and g_engine.running:
            engine_tick()
            pending -= 1
        pthread_mutex_unlock(&g_engine.lock)
    return NULL


cdef int engine_watch_fd(int fd, int pid, uint32_t gen, int is_rtcp) noexcept nogil:
    cdef epoll_event ev
    ev.events = EPOLLIN
    ev.data.u64 = (<uint64_t>gen << 32) | (<uint64_t>is_rtcp << 16) | <uint64_t>pid
    return epoll_ctl(g_engine.epfd, EPOLL_CTL_ADD, fd, &ev)


cdef void engine_unwatch_fd(int fd) noexcept nogil:
    cdef epoll_event ev
    epoll_ctl(g_engine.epfd, EPOLL_CTL_DEL, fd, &ev)


_nss_context = None


def _nss_init_for_many_keys():
    """Initialise NSS, when libsrtp uses it as crypto backend, sized for many keys.

    libsrtp's NSS backend initialises NSS with NSS_INIT_OPTIMIZESPACE, which gives
    the softoken a 32-bucket table of key objects: with hundreds of SRTP streams,
    every packet then walks chains of dozens of keys (a fifth of the CPU at 600
    PCMU+SRTP streams). Initialised first without that flag, the table has 1024
    buckets (10-30 % less CPU there), and libsrtp's own NSS_InitContext calls
    just add references.
    """
    global _nss_context
    import ctypes

    try:    # only if libsrtp brought NSS into the process (RTLD_NOLOAD: do not load it ourselves)
        nss = ctypes.CDLL("libnss3.so", mode=_os.RTLD_NOLOAD | ctypes.RTLD_GLOBAL)
    except OSError:
        return
    if nss.NSS_IsInitialized():
        return
    nss.NSS_InitContext.restype = ctypes.c_void_p
    nss.NSS_InitContext.argtypes = [ctypes.c_char_p] * 4 + [ctypes.c_void_p, ctypes.c_uint32]
    # NSS_INIT_READONLY | NSS_INIT_NOCERTDB | NSS_INIT_NOMODDB | NSS_INIT_FORCEOPEN, as libsrtp
    # asks, less NSS_INIT_OPTIMIZESPACE; kept for the life of the process
    _nss_context = nss.NSS_InitContext(b"", b"", b"", b"", None, 0x1 | 0x2 | 0x4 | 0x8)


def _engine_init():
    cdef epoll_event ev
    if g_engine.initialized:
        return
    g711_init()
    pthread_mutex_init(&g_engine.lock, NULL)
    pthread_mutex_init(&g_engine.evlock, NULL)
    g_engine.epfd = epoll_create1(EPOLL_CLOEXEC)
    g_engine.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
    g_engine.evfd = eventfd(0, EFD_CLOEXEC)
    g_engine.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)
    if g_engine.epfd < 0 or g_engine.wakefd < 0 or g_engine.evfd < 0 or g_engine.timerfd < 0:
        raise MediaError("cannot create the media engine's file descriptors")
    ev.events = EPOLLIN
    ev.data.u64 = TAG_TIMER
    epoll_ctl(g_engine.epfd, EPOLL_CTL_ADD, g_engine.timerfd, &ev)
    ev.data.u64 = TAG_WAKE
    epoll_ctl(g_engine.epfd, EPOLL_CTL_ADD, g_engine.wakefd, &ev)
    g_engine.rand_state = <uint32_t>int.from_bytes(_os.urandom(4), "little")
    _nss_init_for_many_keys()
    if srtp_init() != srtp_err_status_ok:
        raise MediaError("libsrtp initialization failed")
    g_engine.initialized = 1
    g_engine.sample_rate = 48000
    g_engine.frame_ms = 20
    g_engine.frame_samples = 960
    port_alloc(PORT_DEVICE, NULL)


def _port_id(port):
    return port if isinstance(port, int) else port.port


_EVENT_NAMES = {
    EV_DTMF: "AudioStreamGotDTMF",
    EV_PLAYER_END: "WavePlayerDidEnd",
    EV_NO_AUDIO: "AudioStreamGotNoAudio",
    EV_RTP_TIMEOUT: "AudioStreamDidTimeout",
    EV_REMOTE_ADDR: "RTPStreamDidChangeRemoteAddress",
    EV_DEVICE_ERROR: "AudioDeviceDidFail",
}
_DTMF_DIGITS = "0123456789*#ABCD"

# port id -> weak reference to the Python object owning the port
_port_owners = {}


def _default_event_handler(name, sender, data):
    try:
        from sipsimple.notification import NotificationCenter, NotificationData
    except ImportError:
        return
    NotificationCenter().post_notification(name, sender, NotificationData(**data))


class MediaEngine:
    """The conference bridge and media clock (a process-wide singleton).

    ``MediaEngine()`` always returns the same object. ``start()`` spawns the
    media thread (RTP I/O and the 20 ms bridge clock, no GIL) and the event
    pump thread that turns media events into notifications.
    """

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            obj = super().__new__(cls)
            obj._pump = None
            obj._device = ("null", "null", False)
            obj.event_handler = _default_event_handler
            cls._instance = obj
        return cls._instance

    @property
    def running(self):
        return bool(g_engine.running)

    @property
    def sample_rate(self):
        return g_engine.sample_rate

    @property
    def frame_ms(self):
        return g_engine.frame_ms

    @property
    def frame_samples(self):
        return g_engine.frame_samples

    @property
    def device_port(self):
        """Bridge port id of the sound device (0)."""
        return 0

    def start(self, sample_rate=48000, frame_ms=20, device="null", input_device=None, output_device=None,
              echo_cancellation=False):
        """Start the media clock. ``device='null'`` runs without a sound card;
        ``device=None`` with input/output names ('system_default' or a name from
        ``list_devices()``) opens PortAudio devices."""
        cdef itimerspec its
        cdef int rc
        cdef pthread_t th
        if g_engine.running:
            raise MediaError("the media engine is already running")
        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError("sample_rate must be 8000, 16000, 32000 or 48000")
        if frame_ms not in (10, 20, 40) or sample_rate * frame_ms // 1000 > MAX_FRAME:
            raise ValueError("frame_ms must be 10, 20 or 40")
        _engine_init()
        busy = [i for i in range(1, g_engine.port_hint) if g_engine.ports[i] != NULL]
        if busy and (sample_rate != g_engine.sample_rate or frame_ms != g_engine.frame_ms):
            raise MediaError("cannot change the sample rate while ports exist")
        g_engine.sample_rate = sample_rate
        g_engine.frame_ms = frame_ms
        g_engine.frame_samples = sample_rate * frame_ms // 1000
        g_engine.running = 1
        with nogil:
            rc = pthread_create(&th, NULL, engine_thread, NULL)
        if rc != 0:
            g_engine.running = 0
            raise MediaError("cannot start the media thread")
        g_engine.thread = th
        its.it_interval.tv_sec = 0
        its.it_interval.tv_nsec = frame_ms * 1000000
        its.it_value.tv_sec = 0
        its.it_value.tv_nsec = frame_ms * 1000000
        timerfd_settime(g_engine.timerfd, 0, &its, NULL)
        self._pump_stop = False
        self._pump = _threading.Thread(target=self._event_pump, name="sipsimple-media-events", daemon=True)
        self._pump.start()
        try:
            if device is None:
                self.set_devices(input_device or "system_default", output_device or "system_default",
                                 echo_cancellation)
            elif device != "null":
                self.set_devices(device, device, echo_cancellation)
            else:
                self._device = (device, device, echo_cancellation)
        except BaseException:
            self.stop()
            raise
        if not getattr(self, "_atexit", False):
            import atexit
            atexit.register(self.stop)
            self._atexit = True

    def stop(self):
        """Stop the media clock and threads. Ports stay and resume on the next start()."""
        cdef itimerspec its
        cdef uint64_t one = 1
        cdef pthread_t th
        if not g_engine.running:
            return
        _device_close()
        memset(&its, 0, sizeof(its))
        timerfd_settime(g_engine.timerfd, 0, &its, NULL)
        g_engine.running = 0
        write(g_engine.wakefd, &one, 8)
        th = g_engine.thread
        with nogil:
            pthread_join(th, NULL)
        self._pump_stop = True
        write(g_engine.evfd, &one, 8)
        if self._pump is not None and self._pump is not _threading.current_thread():
            self._pump.join()
        self._pump = None

    def set_devices(self, input="system_default", output="system_default", echo_cancellation=None):
        """Change the sound devices, also during calls. 'null' or None: no device."""
        if echo_cancellation is None:
            echo_cancellation = self._device[2]
        if not g_engine.running:
            raise MediaError("the media engine is not running")
        _device_open(input, output, g_engine.sample_rate, g_engine.frame_samples, echo_cancellation)
        self._device = (input, output, echo_cancellation)

    @property
    def devices(self):
        """(input, output, echo_cancellation) currently in use."""
        return self._device

    list_devices = staticmethod(list_devices)

    def connect(self, src, dst):
        """Send the audio of port ``src`` into port ``dst`` (ids or objects with ``.port``)."""
        cdef int s = _port_id(src), d = _port_id(dst), rc
        self._check(s)
        self._check(d)
        py_lock()
        rc = port_connect(s, d)
        engine_unlock()
        if rc < 0:
            raise MediaError("cannot connect %d -> %d" % (s, d))

    def disconnect(self, src, dst):
        cdef int s = _port_id(src), d = _port_id(dst)
        self._check(s)
        self._check(d)
        py_lock()
        port_disconnect(s, d)
        engine_unlock()

    def connections(self):
        """List of (src, dst) pairs."""
        result = []
        py_lock()
        for i in range(g_engine.port_hint):
            if g_engine.ports[i] != NULL:
                for j in range(g_engine.ports[i].nsources):
                    result.append((g_engine.ports[i].sources[j], i))
        engine_unlock()
        return result

    def mute(self, port, muted=True):
        """Mute a port: what it produces is replaced by silence."""
        cdef int p = _port_id(port)
        self._check(p)
        g_engine.ports[p].muted = 1 if muted else 0

    def is_muted(self, port):
        cdef int p = _port_id(port)
        self._check(p)
        return bool(g_engine.ports[p].muted)

    def level(self, port):
        """Level of the audio the port produces, in dBov (-inf for silence)."""
        cdef int p = _port_id(port)
        self._check(p)
        pw = g_engine.ports[p].tx_power
        return 10.0 * log10(pw) if pw > 1e-12 else float("-inf")

    def input_level(self, port):
        """Level of the audio mixed into the port, in dBov."""
        cdef int p = _port_id(port)
        self._check(p)
        pw = g_engine.ports[p].rx_power
        return 10.0 * log10(pw) if pw > 1e-12 else float("-inf")

    @property
    def statistics(self):
        return {"ticks": g_engine.ticks, "late_ticks": g_engine.late_ticks,
                "events_dropped": g_engine.ev_dropped,
                "ports": sum(1 for i in range(g_engine.port_hint) if g_engine.ports[i] != NULL)}

    def _check(self, int p):
        if not g_engine.initialized or p < 0 or p >= MAX_PORTS or g_engine.ports[p] == NULL:
            raise MediaError("no such port: %d" % p)

    def _event_pump(self):
        cdef uint64_t v
        cdef int fd = g_engine.evfd
        cdef MediaEvent batch[64]
        cdef int n
        while True:
            with nogil:
                read(fd, &v, 8)
            while True:
                n = 0
                with nogil:
                    pthread_mutex_lock(&g_engine.evlock)
                    while g_engine.evhead != g_engine.evtail and n < 64:
                        batch[n] = g_engine.evq[g_engine.evhead]
                        g_engine.evhead = (g_engine.evhead + 1) % EVQ_SIZE
                        n += 1
                    pthread_mutex_unlock(&g_engine.evlock)
                if n == 0:
                    break
                for i in range(n):
                    self._dispatch(batch[i].kind, batch[i].port, batch[i].gen, batch[i].arg)
            if self._pump_stop:
                return

    def _dispatch(self, kind, port, gen, arg):
        ref = _port_owners.get(port)
        owner = ref() if ref is not None else None
        if owner is None or owner._gen != gen:
            return
        data = {}
        if kind == EV_DTMF:
            data["digit"] = _DTMF_DIGITS[arg] if arg < 16 else "flash"
        elif kind == EV_REMOTE_ADDR:
            data["address"], data["port"] = owner.remote_address_received or (None, None)
        owner._on_event(kind, data)
        try:
            self.event_handler(_EVENT_NAMES[kind], owner, data)
        except Exception:
            import traceback
            traceback.print_exc()


AudioMixer = MediaEngine
