# media_jb.pxi: adaptive jitter buffer indexed by RTP sequence number.
# Runs only on the media thread, so it needs no lock.
#
# How it adapts: every packet played has waited some time in the buffer (play
# time - arrival time). The lowest wait over the last JB_HISTORY windows of
# JB_WINDOW packets is delay nobody needed: when it exceeds the safety margin
# by a packet or more, that many packets are removed (silent ones preferred,
# see stream_get_frame). A packet that is not there when due (an underrun)
# makes the delay grow by the frames played without it, and raises the margin
# to how late it came; the margin decays again while no underrun happens. So
# the delay follows the jitter seen in the last seconds, up and down, instead
# of ratcheting. A backlog never becomes standing delay: packets that arrived at
# once (at a start, after a pause) are discarded down to the newest one already
# playable, and as many as the media clock skipped ticks (our thread held up)
# are discarded too.

cdef enum JbResult:
    JB_OK = 0
    JB_LOST = 1             # the packet due is missing and later ones are here: conceal it
    JB_EMPTY = 2            # nothing to play (not started, or a pause)
    JB_UNDERRUN = 3         # playing, and the packet due has not arrived (yet): conceal

cdef enum:
    JB_WINDOW = 50              # packets per observation window (1 s at 20 ms)
    JB_HISTORY = 3              # windows whose lowest wait bounds the removable delay (longer-term
                                # spikes are covered by the margin, which remembers underruns)
    JB_SHRINK_PATIENCE = 100    # packets to wait for a silent one before removing audio, which
                                # happens only for JB_AUDIBLE_SURPLUS_US of surplus or more, all
                                # of it at once (one glitch, not several); less waits for silence
                                # (speech has pauses; a tone may keep it)
    JB_AUDIBLE_SURPLUS_US = 60000
    JB_LOSSY_WINDOWS = 10       # windows a loss keeps the FEC delay (see fec_us)
    JB_NO_WAIT = 1 << 30        # "no packet seen yet" for the lowest-wait trackers

# a frame below -50 dBov is silence: removing it to shrink the delay is inaudible
cdef double JB_SILENT_POWER = 1e-5

cdef struct JbSlot:
    int used
    uint16_t seq
    uint32_t ts
    int64_t arrival_ns
    int len                 # < 0: telephone-event placeholder for -1 - len samples of silence
    uint8_t data[JB_SLOT_BYTES]

cdef struct JitterBuffer:
    JbSlot slots[JB_SLOTS]
    int count
    int started
    int playing
    uint16_t next_seq
    int ptime_us            # audio per packet
    int margin_us           # wait kept at the low point beyond what the history shows is needed
    int min_margin_us
    int fec_us              # delay worth keeping while packets get lost: the codec repairs a loss
                            # from the next packet's FEC when that one is already here (Opus)
    int lossy               # windows left during which losses count as recent
    int max_delay_us        # the most delay the buffer may hold; a longer silence is a pause
    int win_packets         # packets played in the current window
    int win_min_us          # lowest wait in the current window
    int win_underrun        # the current window had an underrun
    int hist[JB_HISTORY]    # lowest wait of each of the last windows (JB_NO_WAIT: none yet)
    int hist_pos
    int last_wait_us
    int shrink              # packets still to remove
    int shrink_age          # packets played while a removal waits for a silent one
    int forcing             # removing audio: the wait for silence was in vain
    int empty_run           # consecutive empty reads while playing (an underrun in progress)
    int64_t want_ns         # when the missing packet of that underrun was first due
    uint64_t late
    uint64_t lost
    uint64_t dropped        # audio packets removed to shrink the delay, and stale backlog
    uint64_t skipped        # silent packets removed to shrink the delay
    uint64_t underruns      # frames concealed because the packet due came late
    uint64_t resets
    uint64_t duplicates


cdef void jb_forget_history(JitterBuffer *jb) noexcept nogil:
    cdef int i
    for i in range(JB_HISTORY):
        jb.hist[i] = JB_NO_WAIT
    jb.win_packets = 0
    jb.win_min_us = JB_NO_WAIT
    jb.win_underrun = 0


cdef void jb_reset(JitterBuffer *jb) noexcept nogil:
    """Empty the buffer (new source or a jump); the learned margin stays."""
    cdef int i
    for i in range(JB_SLOTS):
        jb.slots[i].used = 0
    jb.count = 0
    jb.started = 0
    jb.playing = 0
    jb.shrink = 0
    jb.shrink_age = 0
    jb.forcing = 0
    jb.empty_run = 0
    jb.lossy = 0
    jb_forget_history(jb)


cdef void jb_init(JitterBuffer *jb, int ptime_ms, int min_margin_ms, int max_delay_ms, int fec) noexcept nogil:
    jb_reset(jb)
    jb.ptime_us = ptime_ms * 1000
    jb.fec_us = jb.ptime_us if fec else 0
    jb.min_margin_us = min_margin_ms * 1000
    jb.max_delay_us = max_delay_ms * 1000
    if jb.max_delay_us < 2 * jb.ptime_us:
        jb.max_delay_us = 2 * jb.ptime_us
    if jb.min_margin_us > jb.max_delay_us:
        jb.min_margin_us = jb.max_delay_us
    jb.margin_us = jb.min_margin_us
    jb.last_wait_us = 0
    jb.late = jb.lost = jb.dropped = jb.skipped = jb.underruns = jb.resets = jb.duplicates = 0


cdef int jb_put(JitterBuffer *jb, uint16_t seq, uint32_t ts, const uint8_t *data, int length,
                int64_t now) noexcept nogil:
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
    slot.arrival_ns = now
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


cdef JbSlot *jb_peek_after(JitterBuffer *jb) noexcept nogil:
    """The slot of the packet due after the next one, or NULL."""
    cdef uint16_t seq = <uint16_t>(jb.next_seq + 1)
    cdef JbSlot *slot = &jb.slots[seq & (JB_SLOTS - 1)]
    if slot.used and slot.seq == seq:
        return slot
    return NULL


cdef void jb_shift_history(JitterBuffer *jb, int delta_us) noexcept nogil:
    """The delay changed by delta_us: the waits recorded so far would have changed as much."""
    cdef int i
    for i in range(JB_HISTORY):
        if jb.hist[i] != JB_NO_WAIT:
            jb.hist[i] += delta_us
    if jb.win_min_us != JB_NO_WAIT:
        jb.win_min_us += delta_us


cdef inline int jb_margin(JitterBuffer *jb) noexcept nogil:
    """The wait to keep at the low point now."""
    if jb.lossy > 0 and jb.fec_us > jb.margin_us:
        return jb.fec_us
    return jb.margin_us


cdef void jb_observe(JitterBuffer *jb, int wait_us) noexcept nogil:
    """Account one packet played after waiting wait_us; at a window's end, decide on shrinking."""
    cdef int i, low, excess
    jb.last_wait_us = wait_us
    if wait_us < jb.win_min_us:
        jb.win_min_us = wait_us
    jb.win_packets += 1
    if jb.win_packets < JB_WINDOW:
        return
    jb.hist[jb.hist_pos] = jb.win_min_us
    jb.hist_pos = (jb.hist_pos + 1) % JB_HISTORY
    if not jb.win_underrun and jb.margin_us > jb.min_margin_us:
        # calm: let the margin decay (half-life ~5 windows)
        jb.margin_us -= (jb.margin_us - jb.min_margin_us) // 8 + 1
        if jb.margin_us < jb.min_margin_us:
            jb.margin_us = jb.min_margin_us
    jb.win_packets = 0
    jb.win_min_us = JB_NO_WAIT
    jb.win_underrun = 0
    if jb.lossy > 0:
        jb.lossy -= 1
    low = JB_NO_WAIT
    for i in range(JB_HISTORY):
        if jb.hist[i] < low:
            low = jb.hist[i]
    if low == JB_NO_WAIT:
        return
    # decided afresh each window (the history follows every removal), so a pending
    # removal also goes away when the jitter came back meanwhile
    excess = low - jb_margin(jb)
    if excess < jb.ptime_us:
        jb.shrink = 0
        jb.forcing = 0
    else:
        if jb.shrink == 0:
            jb.shrink_age = 0
        jb.shrink = excess // jb.ptime_us


cdef void jb_removed(JitterBuffer *jb, int silent) noexcept nogil:
    """One packet was removed to shrink the delay (by stream_get_frame)."""
    if jb.shrink > 0:
        jb.shrink -= 1
    if jb.shrink == 0:
        jb.shrink_age = 0
        jb.forcing = 0
    if silent:
        jb.skipped += 1
    else:
        jb.dropped += 1
    jb_shift_history(jb, -jb.ptime_us)


cdef void jb_end_underrun(JitterBuffer *jb, int64_t arrival_ns) noexcept nogil:
    """The packet awaited by an underrun is here (arrival_ns) or known lost (0)."""
    cdef int64_t lateness
    jb.shrink = 0
    jb.forcing = 0
    jb.underruns += jb.empty_run
    jb_shift_history(jb, jb.empty_run * jb.ptime_us)
    if arrival_ns > 0:
        lateness = (arrival_ns - jb.want_ns) // 1000
        if lateness > jb.margin_us:
            jb.margin_us = <int>(lateness if lateness < jb.max_delay_us else jb.max_delay_us)
    jb.empty_run = 0


cdef void jb_discard_stale(JitterBuffer *jb, int64_t now, int most) noexcept nogil:
    """Discard up to most packets from the head while the one after has waited the margin.

    Such a head packet is stale: a fresher one is already playable, so playing it
    would only carry delay (a backlog that arrived at once).
    """
    cdef JbSlot *slot = jb_peek(jb)
    cdef JbSlot *nxt
    while slot != NULL and most > 0 and jb.count > 1:
        nxt = jb_peek_after(jb)
        if nxt == NULL or (now - nxt.arrival_ns) // 1000 < jb_margin(jb):
            break
        slot.used = 0
        jb.count -= 1
        jb.next_seq += 1
        jb.dropped += 1
        most -= 1
        slot = nxt


cdef void jb_discard_skipped(JitterBuffer *jb, int most) noexcept nogil:
    """The media clock skipped ticks (our thread was held up): discard as many packets.

    What the sender sent meanwhile was read in one go when we resumed, so arrival
    times cannot tell it is stale; counting can: beyond the packets the margin
    wants buffered, up to one packet per skipped tick is surplus.
    """
    cdef JbSlot *slot = jb_peek(jb)
    cdef int keep = 1 + (jb_margin(jb) + jb.ptime_us - 1) // jb.ptime_us
    while slot != NULL and most > 0 and jb.count > keep and jb_peek_after(jb) != NULL:
        slot.used = 0
        jb.count -= 1
        jb.next_seq += 1
        jb.dropped += 1
        most -= 1
        slot = jb_peek(jb)


cdef int jb_start(JitterBuffer *jb, int64_t now) noexcept nogil:
    """Not playing yet (or after a pause): start when the packet due has waited the margin.

    Packets queued longer than needed (a backlog read at once, e.g. after a
    stall) are discarded first: a start never begins with standing delay.
    """
    cdef JbSlot *slot
    cdef int i
    if jb.count == 0:
        return 0
    i = 0
    while jb_peek(jb) == NULL and i < JB_SLOTS:     # begin at the oldest packet there is
        jb.next_seq += 1
        i += 1
    if jb_peek(jb) == NULL:
        return 0
    jb_discard_stale(jb, now, JB_SLOTS)
    slot = jb_peek(jb)
    if (now - slot.arrival_ns) // 1000 < jb_margin(jb):
        return 0
    jb.playing = 1
    jb.empty_run = 0
    jb_forget_history(jb)
    return 1


cdef int jb_get(JitterBuffer *jb, int64_t now, JbSlot **out) noexcept nogil:
    """Take the packet due now. The returned slot stays valid until the next jb_put."""
    cdef JbSlot *slot
    if not jb.started:
        return JB_EMPTY
    if not jb.playing and not jb_start(jb, now):
        return JB_EMPTY
    slot = jb_peek(jb)
    if slot == NULL:
        if jb.count == 0:
            # underrun: the packet is late, or the sender paused (hold, DTX)
            if jb.empty_run == 0:
                jb.want_ns = now
            jb.empty_run += 1
            jb.win_underrun = 1
            if jb.empty_run * jb.ptime_us > jb.max_delay_us:
                # longer than any delay we would keep: a pause, not jitter; start afresh
                jb.empty_run = 0
                jb.playing = 0
                return JB_EMPTY
            return JB_UNDERRUN
        # later packets are here: this one is lost
        if jb.empty_run:
            if jb.fec_us:
                # keep the frame concealed meanwhile as added delay, so that this loss and
                # the next ones are repaired from the following packet's FEC
                jb.lossy = JB_LOSSY_WINDOWS
                jb_shift_history(jb, jb.empty_run * jb.ptime_us)
                jb.empty_run = 0
            else:
                # the frames concealed while waiting stood in for the packets now known lost
                while jb.empty_run > 0 and jb_peek(jb) == NULL:
                    jb.next_seq += 1
                    jb.lost += 1
                    jb.empty_run -= 1
                if jb.empty_run:
                    jb_end_underrun(jb, 0)
                slot = jb_peek(jb)
        if slot == NULL:
            jb.lossy = JB_LOSSY_WINDOWS
            jb.next_seq += 1
            jb.lost += 1
            return JB_LOST
    if jb.empty_run:
        jb_end_underrun(jb, slot.arrival_ns)
    jb.next_seq += 1
    slot.used = 0
    jb.count -= 1
    jb_observe(jb, <int>((now - slot.arrival_ns) // 1000))
    out[0] = slot
    return JB_OK
