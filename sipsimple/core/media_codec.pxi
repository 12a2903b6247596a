# media_codec.pxi: codec state and the encode/decode/PLC entry points,
# all callable without the GIL.

cdef enum CodecId:
    C_NONE = 0
    C_PCMU = 1
    C_PCMA = 2
    C_G722 = 3
    C_OPUS = 4
    C_GSM = 5

cdef struct CodecState:
    int id
    int sample_rate         # audio sample rate the codec works at
    int clock_rate          # RTP timestamp clock
    int frame_samples       # audio samples per transmitted packet (ptime)
    int ts_per_packet       # RTP timestamp increment per packet
    void *enc
    void *dec


cdef int codec_open(CodecState *c, int cid, int ptime_ms, int opus_dtx, int opus_fec, int opus_bitrate,
                    int opus_complexity, int opus_rate) noexcept nogil:
    cdef int err = 0
    cdef OpusEncoder *oe
    memset(c, 0, sizeof(CodecState))
    c.id = cid
    if cid == C_PCMU or cid == C_PCMA:
        c.sample_rate = 8000
        c.clock_rate = 8000
    elif cid == C_GSM:
        c.sample_rate = 8000
        c.clock_rate = 8000
        ptime_ms = (ptime_ms // 20) * 20 if ptime_ms >= 20 else 20
        c.enc = <void *>gsm_create()
        c.dec = <void *>gsm_create()
    elif cid == C_G722:
        c.sample_rate = 16000
        c.clock_rate = 8000     # RFC 3551: the G.722 RTP clock is 8000 although audio is 16 kHz
        c.enc = <void *>g722_encode_init(NULL, 64000, 0)
        c.dec = <void *>g722_decode_init(NULL, 64000, 0)
    elif cid == C_OPUS:
        # the RTP clock is always 48000; the codec itself runs at the bridge rate
        # when Opus supports it, which saves resampling and CPU
        c.sample_rate = opus_rate if opus_rate in (8000, 12000, 16000, 24000, 48000) else 48000
        c.clock_rate = 48000
        # VOIP rather than RESTRICTED_LOWDELAY: the latter saves 4 ms of look-ahead (2.5 ms
        # instead of 6.5 ms, next to a 20 ms frame) but is CELT only, which drops SILK's
        # in-band FEC (the loss repair we ask peers for with useinbandfec=1) and codes
        # speech worse at VoIP bitrates. The decoder adds no delay of its own.
        oe = opus_encoder_create(c.sample_rate, 1, OPUS_APPLICATION_VOIP, &err)
        if oe == NULL:
            return -1
        opus_encoder_ctl(oe, OPUS_SET_INBAND_FEC_REQUEST, <int32_t>(1 if opus_fec else 0))
        opus_encoder_ctl(oe, OPUS_SET_PACKET_LOSS_PERC_REQUEST, <int32_t>(10 if opus_fec else 0))
        opus_encoder_ctl(oe, OPUS_SET_DTX_REQUEST, <int32_t>(1 if opus_dtx else 0))
        opus_encoder_ctl(oe, OPUS_SET_SIGNAL_REQUEST, <int32_t>OPUS_SIGNAL_VOICE)
        opus_encoder_ctl(oe, OPUS_SET_COMPLEXITY_REQUEST, <int32_t>opus_complexity)
        if opus_bitrate > 0:
            opus_encoder_ctl(oe, OPUS_SET_BITRATE_REQUEST, <int32_t>opus_bitrate)
        c.enc = <void *>oe
        c.dec = <void *>opus_decoder_create(c.sample_rate, 1, &err)
        if c.dec == NULL:
            return -1
    else:
        return -1
    if (cid == C_GSM or cid == C_G722) and (c.enc == NULL or c.dec == NULL):
        return -1
    c.frame_samples = c.sample_rate * ptime_ms // 1000
    c.ts_per_packet = c.clock_rate * ptime_ms // 1000
    return 0


cdef void codec_close(CodecState *c) noexcept nogil:
    if c.id == C_GSM:
        if c.enc != NULL:
            gsm_destroy(<gsm>c.enc)
        if c.dec != NULL:
            gsm_destroy(<gsm>c.dec)
    elif c.id == C_G722:
        if c.enc != NULL:
            g722_encode_free(<g722_encode_state_t *>c.enc)
        if c.dec != NULL:
            g722_decode_free(<g722_decode_state_t *>c.dec)
    elif c.id == C_OPUS:
        if c.enc != NULL:
            opus_encoder_destroy(<OpusEncoder *>c.enc)
        if c.dec != NULL:
            opus_decoder_destroy(<OpusDecoder *>c.dec)
    c.enc = NULL
    c.dec = NULL
    c.id = C_NONE


cdef int codec_encode(CodecState *c, int16_t *pcm, int n, uint8_t *out, int outmax) noexcept nogil:
    """Encode n samples (one packet) into out; returns the payload size or -1."""
    cdef int i, k
    if c.id == C_PCMU:
        if n > outmax:
            return -1
        for i in range(n):
            out[i] = ulaw_encode(pcm[i])
        return n
    elif c.id == C_PCMA:
        if n > outmax:
            return -1
        for i in range(n):
            out[i] = alaw_encode(pcm[i])
        return n
    elif c.id == C_G722:
        if n // 2 > outmax:
            return -1
        return g722_encode(<g722_encode_state_t *>c.enc, out, pcm, n)
    elif c.id == C_GSM:
        k = 0
        i = 0
        while i + 160 <= n and k + 33 <= outmax:
            gsm_encode(<gsm>c.enc, <gsm_signal *>(pcm + i), out + k)
            i += 160
            k += 33
        return k
    elif c.id == C_OPUS:
        return opus_encode(<OpusEncoder *>c.enc, pcm, n, out, outmax if outmax < 1275 else 1275)
    return -1


cdef int codec_decode(CodecState *c, const uint8_t *data, int length, int16_t *pcm, int maxn) noexcept nogil:
    """Decode one payload; returns the number of samples written or -1."""
    cdef int i, k
    if c.id == C_PCMU:
        if length > maxn:
            length = maxn
        for i in range(length):
            pcm[i] = ulaw_dec[data[i]]
        return length
    elif c.id == C_PCMA:
        if length > maxn:
            length = maxn
        for i in range(length):
            pcm[i] = alaw_dec[data[i]]
        return length
    elif c.id == C_G722:
        if length * 2 > maxn:
            length = maxn // 2
        return g722_decode(<g722_decode_state_t *>c.dec, pcm, data, length)
    elif c.id == C_GSM:
        if length < 33 or length % 33 != 0:
            return -1
        k = 0
        i = 0
        while i + 33 <= length and k + 160 <= maxn:
            if gsm_decode(<gsm>c.dec, <gsm_byte *>(data + i), <gsm_signal *>(pcm + k)) < 0:
                return -1
            i += 33
            k += 160
        return k
    elif c.id == C_OPUS:
        k = opus_decode(<OpusDecoder *>c.dec, data, length, pcm, maxn, 0)
        return k if k > 0 else -1
    return -1


cdef int codec_conceal(CodecState *c, int16_t *pcm, int n, const uint8_t *next_data, int next_len) noexcept nogil:
    """Opus loss concealment: FEC from the next packet when it has it, else PLC.

    Returns samples written, or 0 when the codec has no concealment of its own.
    """
    cdef int k
    if c.id != C_OPUS:
        return 0
    if next_data != NULL and next_len > 0:
        # decode_fec=1 uses the LBRR data of the next packet, or conceals when it has none
        k = opus_decode(<OpusDecoder *>c.dec, next_data, next_len, pcm, n, 1)
        if k > 0:
            return k
    k = opus_decode(<OpusDecoder *>c.dec, NULL, 0, pcm, n, 0)
    return k if k > 0 else 0
