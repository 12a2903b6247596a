# The C side of the Engine thread: the records it keeps, the nua callback that
# copies each event out of Sofia's memory, and the command queue through which
# other threads ask for nua_* calls. Nothing here touches Python objects: it all
# runs with the GIL released, on the Engine thread (except cmd_push, which any
# thread may call and which only takes the queue's mutex).

from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport strdup, memcpy, strlen
from libc.stdint cimport intptr_t, uint64_t
from posix.unistd cimport read, write, close

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    enum: EFD_NONBLOCK
    enum: EFD_CLOEXEC

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *m, void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)

cdef extern from "<time.h>" nogil:
    cdef struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec *ts)
    enum: CLOCK_MONOTONIC

# ------------------------------------------------------------------ records

cdef struct hnd_s:
    # One per nua handle: its hmagic. Freed only after a delivery batch, so
    # that every event already queued for it can still be read (see hnd_retire).
    S.nua_handle_t *nh
    long obj_id               # key of the Python object in EngineCore._objects
    char *auth_user           # credentials for automatic digest retries
    char *auth_pass
    int auth_tries
    int destroyed
    int has_saved             # saved[0] holds a request the application must answer
    S.nua_saved_event_t saved[1]
    hnd_s *retired_next
ctypedef hnd_s hnd_t

cdef enum EventKind:
    EV_NUA = 1
    EV_TIMER = 2

cdef struct ev_s:
    ev_s *next
    int kind
    int event                  # nua_event_t
    int status
    int callstate              # from NUTAG_CALLSTATE, -1 when absent
    int auth_retry             # 1 when the stack is retrying with credentials
    hnd_t *h                   # handle the event belongs to (may be NULL)
    long timer_id
    char *phrase
    char *raw                  # the whole SIP message as received or sent
    size_t raw_len
ctypedef ev_s ev_t

cdef enum Op:
    OP_HANDLE = 1
    OP_REGISTER
    OP_UNREGISTER
    OP_INVITE
    OP_ACK
    OP_BYE
    OP_CANCEL
    OP_MESSAGE
    OP_OPTIONS
    OP_INFO
    OP_SUBSCRIBE
    OP_UNSUBSCRIBE
    OP_PUBLISH
    OP_UNPUBLISH
    OP_NOTIFY
    OP_RESPOND
    OP_DESTROY
    OP_SHUTDOWN
    OP_TIMER_SET
    OP_TIMER_CANCEL

cdef struct cmd_s:
    cmd_s *next
    int op
    hnd_t *h
    int status
    const char *phrase         # interned by EngineCore for the engine's lifetime
    S.tagi_t *tags             # ends with a NULL tag; string values owned
    char **strings             # the strdup'd values, freed with the command
    int nstrings
    long arg                   # timer id
    long arg2                  # timer milliseconds
ctypedef cmd_s cmd_t

cdef struct timer_s:
    timer_s *next
    long id
    S.su_timer_t *t
    void *ctx
ctypedef timer_s timer_t

cdef struct ctx_s:
    S.su_root_t *root
    S.nua_t *nua
    int efd
    int wait_index
    # events: engine thread only
    ev_t *ev_head
    ev_t *ev_tail
    long ev_count
    # commands: any thread, under lock
    pthread_mutex_t lock
    cmd_t *cmd_head
    cmd_t *cmd_tail
    int closed
    # handles waiting to be freed after the current batch is delivered
    hnd_t *retired
    timer_t *timers
    int shutting_down
    int shutdown_done
    double shutdown_deadline
ctypedef ctx_s ctx_t

# ------------------------------------------------------------ small helpers

cdef double now_s() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9

cdef char *dup_or_null(const char *s) noexcept nogil:
    return strdup(s) if s != NULL else NULL

cdef inline void set_tag(S.tagi_t *t, S.tag_type_t tt, S.tag_value_t v) noexcept nogil:
    t.t_tag = tt
    t.t_value = v

cdef inline void end_tags(S.tagi_t *t) noexcept nogil:
    t.t_tag = NULL
    t.t_value = 0

cdef void ev_free(ev_t *e) noexcept nogil:
    free(e.phrase)
    free(e.raw)
    free(e)

cdef void cmd_free(cmd_t *c) noexcept nogil:
    cdef int i
    for i in range(c.nstrings):
        free(c.strings[i])
    free(c.strings)
    free(c.tags)
    free(c)

cdef void hnd_free(hnd_t *h) noexcept nogil:
    free(h.auth_user)
    free(h.auth_pass)
    free(h)

cdef void hnd_drop_saved(hnd_t *h) noexcept nogil:
    if h.has_saved:
        S.nua_destroy_event(h.saved)
        h.has_saved = 0

cdef void hnd_retire(ctx_t *c, hnd_t *h) noexcept nogil:
    """Destroy the nua handle now, free the record after the next delivery."""
    if h.destroyed:
        return
    h.destroyed = 1
    hnd_drop_saved(h)
    if h.nh != NULL:
        S.nua_handle_bind(h.nh, NULL)
        S.nua_handle_destroy(h.nh)
        h.nh = NULL
    h.retired_next = c.retired
    c.retired = h

cdef void free_retired(ctx_t *c) noexcept nogil:
    cdef hnd_t *h
    while c.retired != NULL:
        h = c.retired
        c.retired = h.retired_next
        hnd_free(h)

cdef void ev_append(ctx_t *c, ev_t *e) noexcept nogil:
    cdef uint64_t one = 1
    if c.ev_tail:
        c.ev_tail.next = e
    else:
        c.ev_head = e
        # an event queued early in a step (from a timer or a deferred nua signal)
        # must not wait for the step's poll timeout: wake the poll once per batch
        if c.efd >= 0:
            write(c.efd, &one, sizeof(one))
    c.ev_tail = e
    c.ev_count += 1

# -------------------------------------------------- copying a SIP message

cdef char *encode_message(const S.sip_t *sip, size_t *out_len) noexcept nogil:
    """The whole message as text: the parsed fragments in wire order.

    A received message keeps the text of each header (h_data); a header the
    stack built itself is printed with msg_header_e.
    """
    cdef const S.msg_common_t *h
    cdef size_t size = 2048, used = 0
    cdef Py_ssize_t n
    cdef char *buf
    cdef char *tmp
    if sip.sip_request != NULL:
        h = <const S.msg_common_t *>sip.sip_request
    elif sip.sip_status != NULL:
        h = <const S.msg_common_t *>sip.sip_status
    else:
        return NULL
    buf = <char *>malloc(size)
    if buf == NULL:
        return NULL
    while h != NULL:
        if h.h_data != NULL:
            n = <Py_ssize_t>h.h_len
        else:
            n = S.msg_header_e(NULL, 0, <const S.msg_header_t *>h, 0)
            if n < 0:
                n = 0
        if used + n + 1 > size:
            while used + n + 1 > size:
                size *= 2
            tmp = <char *>realloc(buf, size)
            if tmp == NULL:
                free(buf)
                return NULL
            buf = tmp
        if h.h_data != NULL:
            memcpy(buf + used, h.h_data, n)
        elif n > 0:
            S.msg_header_e(buf + used, size - used, <const S.msg_header_t *>h, 0)
        used += n
        h = <const S.msg_common_t *>h.h_succ
    buf[used] = 0
    out_len[0] = used
    return buf

# ------------------------------------------------------ digest challenges

cdef int answer_challenge(hnd_t *h, const S.sip_t *sip) noexcept nogil:
    """Retry a 401/407 with the handle's credentials; 1 when a retry was sent."""
    cdef S.tagi_t t[9]
    cdef char *strs[8]
    cdef int n = 0, i
    cdef const S.sip_auth_t *au
    cdef const char *realm
    cdef size_t len_
    if h.auth_user == NULL or h.auth_tries >= 1 or sip == NULL:
        return 0
    for i in range(2):
        au = sip.sip_www_authenticate if i == 0 else sip.sip_proxy_authenticate
        while au != NULL and n < 8:
            realm = S.msg_params_find(au.au_params, "realm=")
            if au.au_scheme != NULL and realm != NULL:
                # "Scheme:\"realm\":user:password", the realm keeps its quotes
                len_ = strlen(au.au_scheme) + strlen(realm) + strlen(h.auth_user) + strlen(h.auth_pass) + 8
                strs[n] = <char *>malloc(len_)
                snprintf(strs[n], len_, "%s:%s:%s:%s", au.au_scheme, realm, h.auth_user, h.auth_pass)
                set_tag(&t[n], S.nutag_auth, <S.tag_value_t>strs[n])
                n += 1
            au = au.au_next
    if n == 0:
        return 0
    end_tags(&t[n])
    h.auth_tries += 1
    S.nua_authenticate(h.nh, S.tag_next, <S.tag_value_t>t)
    for i in range(n):
        free(strs[i])
    return 1

cdef extern from "<stdio.h>" nogil:
    int snprintf(char *s, size_t n, const char *fmt, ...)

# ------------------------------------------------- nua callback (no GIL)

cdef void nua_cb(S.nua_event_t event, int status, const char *phrase,
                 S.nua_t *nua, void *magic, S.nua_handle_t *nh,
                 void *hmagic, const S.sip_t *sip, S.tagi_t *tags) noexcept nogil:
    cdef ctx_t *c = <ctx_t *>magic
    cdef hnd_t *h = <hnd_t *>hmagic
    cdef S.tagi_t *t
    cdef ev_t *e = <ev_t *>calloc(1, sizeof(ev_t))
    if e == NULL:
        return
    e.kind = EV_NUA
    e.event = event
    e.status = status
    e.callstate = -1
    e.phrase = dup_or_null(phrase)
    if sip != NULL:
        e.raw = encode_message(sip, &e.raw_len)
    if event == S.nua_i_state and tags != NULL:
        t = S.tl_find(tags, S.nutag_callstate)
        if t != NULL:
            e.callstate = <int>t.t_value

    if event == S.nua_r_shutdown:
        if status >= 200:
            c.shutdown_done = 1
    elif h == NULL and nh != NULL:
        if event == S.nua_i_invite or event == S.nua_i_subscribe:
            # a new dialog: the Python side adopts this record in delivery
            h = <hnd_t *>calloc(1, sizeof(hnd_t))
            h.nh = nh
            S.nua_handle_bind(nh, h)
        elif event == S.nua_i_message or event == S.nua_i_options or event == S.nua_i_notify \
                or event == S.nua_i_publish or event == S.nua_i_method or event == S.nua_i_refer:
            # the stack has answered already; nobody owns this handle
            S.nua_handle_destroy(nh)
    elif h != NULL and (status == 401 or status == 407) and event >= S.nua_r_register:
        e.auth_retry = answer_challenge(h, sip)
    elif h != NULL and 200 <= status < 300:
        h.auth_tries = 0
    if event == S.nua_i_subscribe and h != NULL and status < 200:
        # nua_respond() to anything but INVITE needs NUTAG_WITH: keep the request
        hnd_drop_saved(h)
        h.has_saved = S.nua_save_event(nua, h.saved)
    e.h = h
    ev_append(c, e)

# ------------------------------------------------ timers (engine thread)

cdef void timer_cb(void *magic, S.su_timer_t *t, void *arg) noexcept nogil:
    cdef timer_t *tm = <timer_t *>arg
    cdef ctx_t *c = <ctx_t *>tm.ctx
    cdef timer_t **pp = &c.timers
    cdef ev_t *e = <ev_t *>calloc(1, sizeof(ev_t))
    if e != NULL:
        e.kind = EV_TIMER
        e.timer_id = tm.id
        ev_append(c, e)
    while pp[0] != NULL:
        if pp[0] == tm:
            pp[0] = tm.next
            break
        pp = &pp[0].next
    S.su_timer_destroy(tm.t)
    free(tm)

cdef void timer_start(ctx_t *c, long tid, long ms) noexcept nogil:
    cdef timer_t *tm = <timer_t *>calloc(1, sizeof(timer_t))
    if tm == NULL:
        return
    tm.id = tid
    tm.ctx = c
    tm.t = S.su_timer_create(S.su_root_task(c.root), ms if ms > 0 else 1)
    tm.next = c.timers
    c.timers = tm
    S.su_timer_set(tm.t, timer_cb, tm)

cdef void timer_cancel(ctx_t *c, long tid) noexcept nogil:
    cdef timer_t **pp = &c.timers
    cdef timer_t *tm
    while pp[0] != NULL:
        if pp[0].id == tid:
            tm = pp[0]
            pp[0] = tm.next
            S.su_timer_destroy(tm.t)
            free(tm)
            return
        pp = &pp[0].next

cdef void timers_destroy(ctx_t *c) noexcept nogil:
    cdef timer_t *tm
    while c.timers != NULL:
        tm = c.timers
        c.timers = tm.next
        S.su_timer_destroy(tm.t)
        free(tm)

# ------------------------------------------- command execution (no GIL)

cdef void exec_cmd(ctx_t *c, cmd_t *cmd) noexcept nogil:
    cdef hnd_t *h = cmd.h
    cdef S.nua_handle_t *nh = NULL
    cdef S.tag_type_t tt = S.tag_next
    cdef S.tag_value_t tv = <S.tag_value_t>cmd.tags
    if cmd.op == OP_SHUTDOWN:
        if not c.shutting_down:
            c.shutting_down = 1
            c.shutdown_deadline = now_s() + 5.0
            S.nua_shutdown(c.nua)
        return
    if cmd.op == OP_TIMER_SET:
        timer_start(c, cmd.arg, cmd.arg2)
        return
    if cmd.op == OP_TIMER_CANCEL:
        timer_cancel(c, cmd.arg)
        return
    if h == NULL or h.destroyed:
        return
    if cmd.op == OP_DESTROY:
        hnd_retire(c, h)
        return
    if cmd.op == OP_HANDLE:
        if h.nh == NULL and not c.shutting_down:
            h.nh = S.nua_handle(c.nua, h, tt, tv)
        return
    nh = h.nh
    if nh == NULL:
        return
    if cmd.op == OP_RESPOND:
        if h.has_saved:
            S.nua_respond(nh, cmd.status, cmd.phrase, S.nutag_with,
                          <S.tag_value_t>S.nua_saved_event_request(h.saved), tt, tv)
            if cmd.status >= 200:
                hnd_drop_saved(h)
        else:
            S.nua_respond(nh, cmd.status, cmd.phrase, tt, tv)
    elif cmd.op == OP_REGISTER:
        S.nua_register(nh, tt, tv)
    elif cmd.op == OP_UNREGISTER:
        S.nua_unregister(nh, tt, tv)
    elif cmd.op == OP_INVITE:
        S.nua_invite(nh, tt, tv)
    elif cmd.op == OP_ACK:
        S.nua_ack(nh, tt, tv)
    elif cmd.op == OP_BYE:
        S.nua_bye(nh, tt, tv)
    elif cmd.op == OP_CANCEL:
        S.nua_cancel(nh, tt, tv)
    elif cmd.op == OP_MESSAGE:
        S.nua_message(nh, tt, tv)
    elif cmd.op == OP_OPTIONS:
        S.nua_options(nh, tt, tv)
    elif cmd.op == OP_INFO:
        S.nua_info(nh, tt, tv)
    elif cmd.op == OP_SUBSCRIBE:
        S.nua_subscribe(nh, tt, tv)
    elif cmd.op == OP_UNSUBSCRIBE:
        S.nua_unsubscribe(nh, tt, tv)
    elif cmd.op == OP_PUBLISH:
        S.nua_publish(nh, tt, tv)
    elif cmd.op == OP_UNPUBLISH:
        S.nua_unpublish(nh, tt, tv)
    elif cmd.op == OP_NOTIFY:
        S.nua_notify(nh, tt, tv)

cdef int wake_cb(void *root_magic, S.su_wait_t *w, void *arg) noexcept nogil:
    """su_root callback for the eventfd: run the queued commands in order."""
    cdef ctx_t *c = <ctx_t *>arg
    cdef uint64_t v
    cdef cmd_t *cmd
    cdef cmd_t *nxt
    read(c.efd, &v, sizeof(v))
    pthread_mutex_lock(&c.lock)
    cmd = c.cmd_head
    c.cmd_head = c.cmd_tail = NULL
    pthread_mutex_unlock(&c.lock)
    while cmd != NULL:
        nxt = cmd.next
        exec_cmd(c, cmd)
        cmd_free(cmd)
        cmd = nxt
    return 0

cdef int cmd_push(ctx_t *c, cmd_t *cmd) noexcept nogil:
    """Queue a command from any thread; 0 when refused (engine stopped)."""
    cdef uint64_t one = 1
    cdef int ok = 0
    pthread_mutex_lock(&c.lock)
    if not c.closed:
        if c.cmd_tail:
            c.cmd_tail.next = cmd
        else:
            c.cmd_head = cmd
        c.cmd_tail = cmd
        write(c.efd, &one, sizeof(one))
        ok = 1
    pthread_mutex_unlock(&c.lock)
    return ok

# ---------------------------------------------- sofia log routing (no GIL)

cdef extern from "<stdio.h>" nogil:
    int vdprintf(int fd, const char *fmt, S.va_list ap)

cdef void silent_logger(void *stream, const char *fmt, S.va_list ap) noexcept nogil:
    pass

cdef void trace_logger(void *stream, const char *fmt, S.va_list ap) noexcept nogil:
    # stream is the trace file's descriptor; see EngineCore.start
    vdprintf(<int><intptr_t>stream, fmt, ap)
