# media_api.pxi: Python classes for the non-stream bridge ports.


def _read_wav_header(path):
    """Return (channels, rate, data_offset, data_length) of a 16-bit PCM WAV file."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise MediaError("%s is not a WAV file" % path)
        fmt = None
        while True:
            ch = f.read(8)
            if len(ch) < 8:
                raise MediaError("%s has no data chunk" % path)
            cid, size = ch[:4], _struct.unpack("<I", ch[4:])[0]
            if cid == b"fmt ":
                body = f.read(size + (size & 1))
                fmt = _struct.unpack("<HHIIHH", body[:16])
            elif cid == b"data":
                if fmt is None:
                    raise MediaError("%s: data before fmt" % path)
                tag, channels, rate, _, _, bits = fmt
                if tag not in (1, 0xFFFE) or bits != 16 or channels not in (1, 2):
                    raise MediaError("%s: only 16-bit PCM mono/stereo WAV is supported" % path)
                offset = f.tell()
                total = _os.fstat(f.fileno()).st_size
                if size == 0 or offset + size > total:     # streamed/unfinished files
                    size = total - offset
                return channels, rate, offset, size - size % (2 * channels)
            else:
                f.seek(size + (size & 1), 1)


cdef class ToneGenerator(BridgePort):
    """A bridge port producing a sum of sine waves.

    ToneGenerator(frequencies=1000, level=-12.0): ``level`` is the RMS level of
    each sine in dBov (0 dBov = full-scale square wave).
    """

    cdef Tone *t
    cdef readonly double level

    def __init__(self, frequencies=1000, level=-12.0):
        self.t = <Tone *>calloc(1, sizeof(Tone))
        if self.t == NULL:
            raise MemoryError()
        self.level = level
        self._set(frequencies, level)
        self.t.active = 1
        self._attach(PORT_TONE, self.t)

    def _set(self, frequencies, level):
        if isinstance(frequencies, (int, float)):
            frequencies = (frequencies,)
        frequencies = tuple(float(f) for f in frequencies)[:4]
        py_lock() if self.port >= 0 else None
        self.t.nfreq = len(frequencies)
        for i, f in enumerate(frequencies):
            self.t.freq[i] = f
            self.t.phase[i] = 0
        self.t.amp = 32768.0 * 10 ** (level / 20.0) * sqrt(2.0)
        engine_unlock() if self.port >= 0 else None

    @property
    def frequencies(self):
        return tuple(self.t.freq[i] for i in range(self.t.nfreq))

    @frequencies.setter
    def frequencies(self, value):
        self._set(value, self.level)

    @property
    def active(self):
        return bool(self.t.active)

    @active.setter
    def active(self, value):
        self.t.active = 1 if value else 0

    def stop(self):
        """Remove the port from the bridge."""
        if self.t != NULL:
            self._teardown()

    cdef void _teardown(self) noexcept:
        py_lock()
        if self.port >= 0 and g_engine.ports[self.port] != NULL and g_engine.ports[self.port].obj == <void *>self.t:
            port_free(self.port)
        engine_unlock()
        free(self.t)
        self.t = NULL

    def __dealloc__(self):
        if self.t != NULL:
            self._teardown()


cdef class WavePlayer(BridgePort):
    """Plays a 16-bit PCM WAV file into the bridge (any rate, mono or stereo).

    WavePlayer(path, loop=False). ``start()`` begins playback; at the end a
    ``WavePlayerDidEnd`` event is posted (never when looping).
    """

    cdef Player *pl
    cdef readonly object path
    cdef readonly bint loop
    cdef readonly bint ended

    def __init__(self, path, loop=False):
        cdef int err = 0
        if not g_engine.initialized:
            _engine_init()
        channels, rate, offset, size = _read_wav_header(path)
        self.path = path
        self.loop = loop
        self.pl = <Player *>calloc(1, sizeof(Player))
        if self.pl == NULL:
            raise MemoryError()
        self.pl.f = fopen(_os.fsencode(path), b"rb")
        if self.pl.f == NULL:
            free(self.pl)
            self.pl = NULL
            raise MediaError("cannot open %s" % path)
        fseek(self.pl.f, offset, SEEK_SET)
        self.pl.data_start = offset
        self.pl.data_len = size
        self.pl.channels = channels
        self.pl.rate = rate
        self.pl.loop = 1 if loop else 0
        if rate != g_engine.sample_rate:
            self.pl.rs = speex_resampler_init(1, rate, g_engine.sample_rate, 5, &err)
            speex_resampler_skip_zeros(self.pl.rs)
        self._attach(PORT_PLAYER, self.pl)

    def start(self):
        """Start (or restart from the beginning) playback."""
        py_lock()
        fseek(self.pl.f, self.pl.data_start, SEEK_SET)
        self.pl.pos = 0
        self.pl.fifo_len = 0
        self.pl.ended = 0
        self.pl.playing = 1
        self.ended = False
        engine_unlock()

    @property
    def playing(self):
        return self.pl != NULL and bool(self.pl.playing)

    @property
    def duration(self):
        return self.pl.data_len / (2.0 * self.pl.channels * self.pl.rate)

    def _on_event(self, kind, data):
        if kind == EV_PLAYER_END:
            self.ended = True

    def stop(self):
        """Stop playback and remove the port."""
        if self.pl != NULL:
            self._teardown()

    cdef void _teardown(self) noexcept:
        py_lock()
        if self.port >= 0 and g_engine.ports[self.port] != NULL and g_engine.ports[self.port].obj == <void *>self.pl:
            port_free(self.port)
        engine_unlock()
        fclose(self.pl.f)
        if self.pl.rs != NULL:
            speex_resampler_destroy(self.pl.rs)
        free(self.pl)
        self.pl = NULL

    def __dealloc__(self):
        if self.pl != NULL:
            self._teardown()


cdef class WaveRecorder(BridgePort):
    """Records what is connected into its port to a mono 16-bit WAV file at
    the bridge rate. The header is rewritten and the file flushed every
    ``sync_interval`` seconds (default 1), so a crash loses at most that much.
    """

    cdef Recorder *r
    cdef readonly object path

    def __init__(self, path, sync_interval=1.0):
        cdef uint8_t h[44]
        _engine_init()
        self.path = path
        self.r = <Recorder *>calloc(1, sizeof(Recorder))
        if self.r == NULL:
            raise MemoryError()
        self.r.rate = g_engine.sample_rate
        self.r.header_ticks = max(1, int(sync_interval * 1000 / g_engine.frame_ms))
        self._attach(PORT_RECORDER, self.r)

    def start(self):
        """Create the file and start recording."""
        cdef uint8_t h[44]
        cdef FILE *f
        if self.r.f != NULL:
            return
        f = fopen(_os.fsencode(self.path), b"wb")
        if f == NULL:
            raise MediaError("cannot create %s" % self.path)
        wav_header(h, self.r.rate, 0)
        fwrite(h, 1, 44, f)
        fflush(f)
        py_lock()
        self.r.f = f
        self.r.active = 1
        engine_unlock()

    @property
    def duration(self):
        return self.r.data_bytes / (2.0 * self.r.rate) if self.r != NULL else 0.0

    def stop(self):
        """Finish the file and remove the port."""
        if self.r != NULL:
            self._teardown()

    cdef void _teardown(self) noexcept:
        py_lock()
        if self.port >= 0 and g_engine.ports[self.port] != NULL and g_engine.ports[self.port].obj == <void *>self.r:
            port_free(self.port)
        engine_unlock()
        if self.r.f != NULL:
            recorder_sync(self.r)
            fclose(self.r.f)
        free(self.r)
        self.r = NULL

    def __dealloc__(self):
        if self.r != NULL:
            self._teardown()


cdef class NumpyTap(BridgePort):
    """Read and write a bridge port as int16 numpy samples at the bridge rate.

    ``read()`` returns what the bridge mixed into the port since the last read;
    ``write(samples)`` queues audio the port plays into the bridge.
    """

    cdef Tap *t

    def __init__(self, capacity_ms=5000):
        _engine_init()
        cap = max(g_engine.frame_samples * 4, g_engine.sample_rate * capacity_ms // 1000)
        self.t = <Tap *>calloc(1, sizeof(Tap))
        if self.t == NULL:
            raise MemoryError()
        pthread_mutex_init(&self.t.lock, NULL)
        self.t.rx_cap = self.t.tx_cap = cap
        self.t.rx = <int16_t *>calloc(cap, sizeof(int16_t))
        self.t.tx = <int16_t *>calloc(cap, sizeof(int16_t))
        self.t.stamp_cap = cap // g_engine.frame_samples + 2
        self.t.stamp_end = <uint64_t *>calloc(self.t.stamp_cap, sizeof(uint64_t))
        self.t.stamp_ns = <int64_t *>calloc(self.t.stamp_cap, sizeof(int64_t))
        if self.t.rx == NULL or self.t.tx == NULL or self.t.stamp_end == NULL or self.t.stamp_ns == NULL:
            raise MemoryError()
        self._attach(PORT_TAP, self.t)

    @property
    def frame_size(self):
        return g_engine.frame_samples

    @property
    def available(self):
        return self.t.rx_len

    def read(self, max_samples=None):
        """Samples received so far (oldest first) as a 1-D int16 array."""
        cdef int n
        cdef int16_t[::1] view
        n = self.t.rx_len if max_samples is None else min(int(max_samples), self.t.rx_len)
        out = _np.empty(n, dtype=_np.int16)
        if n == 0:
            return out
        view = out
        with nogil:
            pthread_mutex_lock(&self.t.lock)
            n = ring_pop(self.t.rx, self.t.rx_cap, &self.t.rx_head, &self.t.rx_len, &view[0], n)
            pthread_mutex_unlock(&self.t.lock)
        return out[:n]

    def read_stamped(self):
        """Every sample received so far, and when the bridge delivered each one.

        Returns (samples, times): int16 samples as ``read()`` gives them and, for
        each, CLOCK_MONOTONIC nanoseconds: the media tick that delivered its
        frame plus its offset in the frame (0 if no longer known). Timing audio
        this way needs no precise polling.
        """
        cdef int n, fs = g_engine.frame_samples, rate = g_engine.sample_rate
        cdef uint64_t first
        cdef int16_t[::1] view
        cdef int64_t[::1] tview
        n = self.t.rx_len
        out = _np.empty(n, dtype=_np.int16)
        times = _np.zeros(n, dtype=_np.int64)
        if n == 0:
            return out, times
        view = out
        tview = times
        with nogil:
            pthread_mutex_lock(&self.t.lock)
            if n > self.t.rx_len:
                n = self.t.rx_len
            first = self.t.rx_total - <uint64_t>self.t.rx_len
            n = ring_pop(self.t.rx, self.t.rx_cap, &self.t.rx_head, &self.t.rx_len, &view[0], n)
            if n > 0:
                tap_sample_times(self.t, first, n, &tview[0], fs, rate)
            pthread_mutex_unlock(&self.t.lock)
        return out[:n], times[:n]

    def read_frames(self):
        """Whole bridge frames received so far, as an int16 array of shape (n, frame_size)."""
        cdef int fs = g_engine.frame_samples
        return self.read((self.t.rx_len // fs) * fs).reshape(-1, fs)

    def write(self, samples):
        """Queue int16 samples to play into the bridge. Returns how many were queued."""
        cdef int16_t[::1] view
        cdef int n, space
        arr = _np.ascontiguousarray(samples, dtype=_np.int16).reshape(-1)
        n = arr.shape[0]
        if n == 0:
            return 0
        view = arr
        with nogil:
            pthread_mutex_lock(&self.t.lock)
            space = self.t.tx_cap - self.t.tx_len
            if n > space:
                n = space
            ring_push(self.t.tx, self.t.tx_cap, &self.t.tx_head, &self.t.tx_len, &view[0], n)
            pthread_mutex_unlock(&self.t.lock)
        return n

    def clear(self):
        with nogil:
            pthread_mutex_lock(&self.t.lock)
            self.t.rx_len = self.t.tx_len = 0
            pthread_mutex_unlock(&self.t.lock)

    def stop(self):
        if self.t != NULL:
            self._teardown()

    cdef void _teardown(self) noexcept:
        py_lock()
        if self.port >= 0 and g_engine.ports[self.port] != NULL and g_engine.ports[self.port].obj == <void *>self.t:
            port_free(self.port)
        engine_unlock()
        free(self.t.rx)
        free(self.t.tx)
        free(self.t.stamp_end)
        free(self.t.stamp_ns)
        pthread_mutex_destroy(&self.t.lock)
        free(self.t)
        self.t = NULL

    def __dealloc__(self):
        if self.t != NULL:
            self._teardown()
