# media_jb.pxi: adaptive jitter buffer indexed by RTP sequence number.
# Runs only on the media thread, so it needs no lock.

cdef enum JbResult:
    JB_OK = 0
    JB_LOST = 1
    JB_EMPTY = 2

cdef struct JbSlot:
    int used
    uint16_t seq
    uint32_t ts
    int len                 # < 0: telephone-event placeholder for -1 - len samples of silence
    uint8_t data[JB_SLOT_BYTES]

cdef struct JitterBuffer:
    JbSlot slots[JB_SLOTS]
    int count
    int started
    int playing
    uint16_t next_seq
    int target              # packets buffered before playout (re)starts
    int min_target
    int max_target
    int high_run            # consecutive reads with more than target + 2 buffered
    int calm_run            # consecutive reads without an underrun
    uint64_t late
    uint64_t lost
    uint64_t dropped
    uint64_t underruns
    uint64_t resets
    uint64_t duplicates


cdef void jb_reset(JitterBuffer *jb) noexcept nogil:
    cdef int i
    for i in range(JB_SLOTS):
        jb.slots[i].used = 0
    jb.count = 0
    jb.started = 0
    jb.playing = 0
    jb.high_run = 0


cdef void jb_init(JitterBuffer *jb, int min_target, int max_target) noexcept nogil:
    jb_reset(jb)
    jb.min_target = min_target
    jb.max_target = max_target
    jb.target = min_target
    jb.late = jb.lost = jb.dropped = jb.underruns = jb.resets = jb.duplicates = 0


cdef int jb_put(JitterBuffer *jb, uint16_t seq, uint32_t ts, const uint8_t *data, int length) noexcept nogil:
    cdef int d
    cdef JbSlot *slot
    if length > JB_SLOT_BYTES:
        return -1
    if not jb.started:
        jb.started = 1
        jb.next_seq = seq
    d = <int16_t>(seq - jb.next_seq)
    if d < -JB_SLOTS or d >= JB_SLOTS:
        jb_reset(jb)
        jb.resets += 1
        jb.started = 1
        jb.next_seq = seq
        d = 0
    if d < 0:
        jb.late += 1
        return -1
    slot = &jb.slots[seq & (JB_SLOTS - 1)]
    if slot.used:
        jb.duplicates += 1
        return -1
    slot.used = 1
    slot.seq = seq
    slot.ts = ts
    slot.len = length
    if length > 0:
        memcpy(slot.data, data, length)
    jb.count += 1
    return 0


cdef JbSlot *jb_peek(JitterBuffer *jb) noexcept nogil:
    """The slot of the packet due next, or NULL."""
    cdef JbSlot *slot = &jb.slots[jb.next_seq & (JB_SLOTS - 1)]
    if slot.used and slot.seq == jb.next_seq:
        return slot
    return NULL


cdef int jb_get(JitterBuffer *jb, JbSlot **out) noexcept nogil:
    """Take the next packet. The returned slot stays valid until the next jb_put."""
    cdef JbSlot *slot
    if not jb.started:
        return JB_EMPTY
    if not jb.playing:
        if jb.count >= jb.target:
            jb.playing = 1
        else:
            return JB_EMPTY
    if jb.count == 0:
        jb.playing = 0
        jb.underruns += 1
        jb.calm_run = 0
        if jb.target < jb.max_target:
            jb.target += 1
        return JB_EMPTY
    # shrink: too much buffered for about half a second -> drop one packet
    if jb.count > jb.target + 2:
        jb.high_run += 1
        if jb.high_run > 25:
            jb.high_run = 0
            slot = jb_peek(jb)
            if slot != NULL:
                slot.used = 0
                jb.count -= 1
            jb.next_seq += 1
            jb.dropped += 1
    else:
        jb.high_run = 0
    # relax the target after ~10 s without an underrun
    jb.calm_run += 1
    if jb.calm_run > 500:
        jb.calm_run = 0
        if jb.target > jb.min_target:
            jb.target -= 1
    slot = jb_peek(jb)
    jb.next_seq += 1
    if slot != NULL:
        slot.used = 0
        jb.count -= 1
        out[0] = slot
        return JB_OK
    jb.lost += 1
    return JB_LOST
