# media_device.pxi: the sound device port (bridge port 0). Either the null
# device (the media clock alone, no sound card needed) or a PortAudio stream
# exchanging audio with the bridge through two rings, with an optional
# speexdsp echo canceller on the captured signal.

cdef struct Device:
    int active                  # 1 when a PortAudio stream is running
    int has_input
    int has_output
    PaStream *stream
    pthread_mutex_t lock
    int16_t *cap
    int cap_cap
    int cap_head
    int cap_len
    int16_t *play
    int play_cap
    int play_head
    int play_len
    int primed
    SpeexEchoState *ec
    SpeexPreprocessState *pp
    int ec_enabled
    int loopback                # test device: capture hears the playback (an echo path)
    int16_t ref[MAX_FRAME]
    int16_t tmp[MAX_FRAME]
    uint64_t cap_overflow
    uint64_t play_underflow

cdef Device g_device


cdef int pa_callback(const void *inp, void *outp, unsigned long frames,
                     const PaStreamCallbackTimeInfo *ti, PaStreamCallbackFlags flags,
                     void *user) noexcept nogil:
    cdef Device *d = <Device *>user
    cdef int k
    pthread_mutex_lock(&d.lock)
    if inp != NULL:
        if d.cap_len + <int>frames > d.cap_cap:
            d.cap_overflow += 1
        ring_push(d.cap, d.cap_cap, &d.cap_head, &d.cap_len, <const int16_t *>inp, <int>frames)
    if outp != NULL:
        k = 0
        if d.primed:
            k = ring_pop(d.play, d.play_cap, &d.play_head, &d.play_len, <int16_t *>outp, <int>frames)
        if k < <int>frames:
            if d.primed:
                d.play_underflow += 1
            memset(<int16_t *>outp + k, 0, (frames - k) * sizeof(int16_t))
    pthread_mutex_unlock(&d.lock)
    return paContinue


cdef int device_get_frame(int16_t *out, int n) noexcept nogil:
    cdef Device *d = &g_device
    cdef int k
    if not d.active or not d.has_input:
        return 0
    pthread_mutex_lock(&d.lock)
    if d.cap_len < n:
        pthread_mutex_unlock(&d.lock)
        return 0
    k = ring_pop(d.cap, d.cap_cap, &d.cap_head, &d.cap_len, out, n)
    # keep capture latency bounded: drop what piles up beyond 3 frames
    while d.cap_len > 3 * n:
        ring_pop(d.cap, d.cap_cap, &d.cap_head, &d.cap_len, d.tmp, n)
    pthread_mutex_unlock(&d.lock)
    if d.ec_enabled and d.ec != NULL:
        speex_echo_cancellation(d.ec, out, d.ref, d.tmp)
        if d.pp != NULL:
            speex_preprocess_run(d.pp, d.tmp)
        memcpy(out, d.tmp, n * sizeof(int16_t))
    return 1


cdef void device_put_frame(const int16_t *buf, int n) noexcept nogil:
    cdef Device *d = &g_device
    cdef int i
    memcpy(d.ref, buf, n * sizeof(int16_t))
    if not d.active or not d.has_output:
        return
    pthread_mutex_lock(&d.lock)
    if d.loopback:
        # the "room": what is played comes back at half amplitude, one frame later
        for i in range(n):
            d.tmp[i] = buf[i] // 2
        ring_push(d.cap, d.cap_cap, &d.cap_head, &d.cap_len, d.tmp, n)
        pthread_mutex_unlock(&d.lock)
        return
    ring_push(d.play, d.play_cap, &d.play_head, &d.play_len, buf, n)
    if d.play_len >= 2 * n:
        d.primed = 1
    while d.play_len > 6 * n:
        ring_pop(d.play, d.play_cap, &d.play_head, &d.play_len, d.tmp, n)
    pthread_mutex_unlock(&d.lock)


_pa_initialized = False


def _pa_init():
    global _pa_initialized
    cdef PaError err
    if not _pa_initialized:
        # PortAudio probes ALSA/JACK and prints to stderr; silence it while it does
        devnull = _os.open(_os.devnull, _os.O_WRONLY)
        saved = _os.dup(2)
        _os.dup2(devnull, 2)
        try:
            with nogil:
                err = Pa_Initialize()
        finally:
            _os.dup2(saved, 2)
            _os.close(saved)
            _os.close(devnull)
        if err != paNoError:
            raise MediaError("PortAudio initialization failed: %s" % Pa_GetErrorText(err).decode())
        _pa_initialized = True


def list_devices():
    """List the sound devices PortAudio sees.

    Returns a list of dicts: index, name, host_api, input_channels,
    output_channels, default_sample_rate, default_input, default_output.
    """
    cdef const PaDeviceInfo *info
    cdef int i, n
    _pa_init()
    n = Pa_GetDeviceCount()
    din = Pa_GetDefaultInputDevice()
    dout = Pa_GetDefaultOutputDevice()
    result = []
    for i in range(max(n, 0)):
        info = Pa_GetDeviceInfo(i)
        if info == NULL:
            continue
        api = Pa_GetHostApiInfo(info.hostApi)
        result.append({
            "index": i,
            "name": info.name.decode("utf-8", "replace"),
            "host_api": api.name.decode("utf-8", "replace") if api != NULL else "",
            "input_channels": info.maxInputChannels,
            "output_channels": info.maxOutputChannels,
            "default_sample_rate": info.defaultSampleRate,
            "default_input": i == din,
            "default_output": i == dout,
        })
    return result


def _find_device(name, is_input):
    if name is None or name == "null":
        return -1
    _pa_init()
    if name == "system_default":
        idx = Pa_GetDefaultInputDevice() if is_input else Pa_GetDefaultOutputDevice()
        if idx == paNoDevice:
            raise MediaError("no default %s device" % ("input" if is_input else "output"))
        return idx
    for dev in list_devices():
        if dev["name"] == name and (dev["input_channels"] if is_input else dev["output_channels"]) > 0:
            return dev["index"]
    raise MediaError("no such %s device: %r" % ("input" if is_input else "output", name))


def _device_close():
    cdef PaStream *st
    py_lock()
    g_device.active = 0
    st = g_device.stream
    g_device.stream = NULL
    engine_unlock()
    if st != NULL:
        with nogil:
            Pa_StopStream(st)
            Pa_CloseStream(st)
    if g_device.ec != NULL:
        speex_echo_state_destroy(g_device.ec)
        g_device.ec = NULL
    if g_device.pp != NULL:
        speex_preprocess_state_destroy(g_device.pp)
        g_device.pp = NULL


def _device_open(input_name, output_name, int rate, int frame, echo_cancellation):
    """Open the PortAudio devices (None/'null' for none) and start them.

    The name 'loopback' (both ways) is a test device whose capture hears its
    own playback, to exercise the echo canceller without a sound card.
    """
    cdef PaStreamParameters ip, op
    cdef PaStream *st = NULL
    cdef PaError err
    cdef int i_idx, o_idx, tail
    _device_close()
    loopback = input_name == "loopback" and output_name == "loopback"
    if loopback:
        i_idx = o_idx = -2
    else:
        i_idx = _find_device(input_name, True)
        o_idx = _find_device(output_name, False)
    if i_idx == -1 and o_idx == -1:
        return
    if g_device.cap == NULL:
        pthread_mutex_init(&g_device.lock, NULL)
        g_device.cap_cap = g_device.play_cap = 16 * MAX_FRAME
        g_device.cap = <int16_t *>calloc(g_device.cap_cap, sizeof(int16_t))
        g_device.play = <int16_t *>calloc(g_device.play_cap, sizeof(int16_t))
    g_device.cap_head = g_device.cap_len = g_device.play_head = g_device.play_len = 0
    g_device.primed = 0
    memset(&ip, 0, sizeof(ip))
    memset(&op, 0, sizeof(op))
    if i_idx >= 0:
        ip.device = i_idx
        ip.channelCount = 1
        ip.sampleFormat = paInt16
        ip.suggestedLatency = Pa_GetDeviceInfo(i_idx).defaultLowInputLatency
    if o_idx >= 0:
        op.device = o_idx
        op.channelCount = 1
        op.sampleFormat = paInt16
        op.suggestedLatency = Pa_GetDeviceInfo(o_idx).defaultLowOutputLatency
    err = paNoError
    if not loopback:
        with nogil:
            err = Pa_OpenStream(&st, &ip if i_idx >= 0 else NULL, &op if o_idx >= 0 else NULL, rate, frame,
                                paClipOff, pa_callback, &g_device)
            if err == paNoError:
                err = Pa_StartStream(st)
    if err != paNoError:
        if st != NULL:
            Pa_CloseStream(st)
        raise MediaError("cannot open sound device: %s" % Pa_GetErrorText(err).decode())
    if echo_cancellation and i_idx != -1:
        tail = rate // 5              # 200 ms echo tail
        g_device.ec = speex_echo_state_init(frame, tail)
        speex_echo_ctl(g_device.ec, SPEEX_ECHO_SET_SAMPLING_RATE, &rate)
        g_device.pp = speex_preprocess_state_init(frame, rate)
        speex_preprocess_ctl(g_device.pp, SPEEX_PREPROCESS_SET_ECHO_STATE, g_device.ec)
    py_lock()
    g_device.stream = st
    g_device.has_input = i_idx != -1
    g_device.has_output = o_idx != -1
    g_device.loopback = 1 if loopback else 0
    g_device.ec_enabled = 1 if (echo_cancellation and i_idx != -1) else 0
    g_device.active = 1
    engine_unlock()
