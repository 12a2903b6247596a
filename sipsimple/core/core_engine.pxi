# EngineCore: the thread that owns Sofia-SIP's su_root and nua, and the
# Python-facing pieces it hands out (Handle, CoreEvent). The Python singleton
# sipsimple.engine.Engine wraps one EngineCore and adds options and notifications.

import logging
import os
import threading

cdef extern from "<sys/mman.h>" nogil:
    int memfd_create(const char *name, unsigned int flags)

cdef extern from "<fcntl.h>" nogil:
    int fcntl(int fd, int cmd, int arg)
    enum: F_SETFL
    enum: O_APPEND

cdef extern from "<unistd.h>" nogil:
    Py_ssize_t pread(int fd, void *buf, size_t count, long offset)
    int ftruncate(int fd, long length)
    long lseek(int fd, long offset, int whence)
    enum: SEEK_END

_log = logging.getLogger("sipsimple.core")

# tag name -> index into _TAG_TYPES; the names are the Sofia tag names in lower
# case without their prefix (NUTAG_URL -> "url", SIPTAG_TO_STR -> "to").
_TAG_NAMES = (
    "url", "sips_url", "media_enable", "appl_method", "m_username", "m_display", "m_params",
    "outbound", "keepalive", "autoack", "autoalert", "autoanswer", "allow", "supported",
    "user_agent", "session_timer", "newsub", "substate", "sub_expires", "retry_count",
    "detect_network_updates", "path_enable", "early_media", "initial_route", "registrar",
    "enableinvite", "enablemessage", "shutdown_events", "allow_events", "service_route_enable",
    "refresh_without_sdp", "update_refresh",
    "to", "from", "content_type", "payload", "expires", "contact", "user_agent_header", "event",
    "header", "route", "accept", "subscription_state", "reason", "if_match", "allow_events_header",
    "dump", "log", "certificate", "tls_verify_peer", "tls_verify_policy", "tls_verify_depth",
    "udp_mtu", "sip_t1x64", "default_proxy", "use_naptr", "use_srv", "client_rport", "server_rport",
    "udp_rmem", "udp_wmem", "resolv_conf",
)
cdef S.tag_type_t _TAG_TYPES[64]
cdef dict _TAG_INDEX = {}

cdef void _init_tags():
    types = [
        <intptr_t>S.nutag_url, <intptr_t>S.nutag_sips_url, <intptr_t>S.nutag_media_enable,
        <intptr_t>S.nutag_appl_method, <intptr_t>S.nutag_m_username, <intptr_t>S.nutag_m_display,
        <intptr_t>S.nutag_m_params, <intptr_t>S.nutag_outbound, <intptr_t>S.nutag_keepalive,
        <intptr_t>S.nutag_autoack, <intptr_t>S.nutag_autoalert, <intptr_t>S.nutag_autoanswer,
        <intptr_t>S.nutag_allow, <intptr_t>S.nutag_supported, <intptr_t>S.nutag_user_agent,
        <intptr_t>S.nutag_session_timer, <intptr_t>S.nutag_newsub, <intptr_t>S.nutag_substate,
        <intptr_t>S.nutag_sub_expires, <intptr_t>S.nutag_retry_count,
        <intptr_t>S.nutag_detect_network_updates, <intptr_t>S.nutag_path_enable,
        <intptr_t>S.nutag_early_media, <intptr_t>S.nutag_initial_route_str, <intptr_t>S.nutag_registrar,
        <intptr_t>S.nutag_enableinvite, <intptr_t>S.nutag_enablemessage,
        <intptr_t>S.nutag_shutdown_events, <intptr_t>S.nutag_allow_events,
        <intptr_t>S.nutag_service_route_enable, <intptr_t>S.nutag_refresh_without_sdp,
        <intptr_t>S.nutag_update_refresh,
        <intptr_t>S.siptag_to_str, <intptr_t>S.siptag_from_str, <intptr_t>S.siptag_content_type_str,
        <intptr_t>S.siptag_payload_str, <intptr_t>S.siptag_expires_str, <intptr_t>S.siptag_contact_str,
        <intptr_t>S.siptag_user_agent_str, <intptr_t>S.siptag_event_str, <intptr_t>S.siptag_header_str,
        <intptr_t>S.siptag_route_str, <intptr_t>S.siptag_accept_str,
        <intptr_t>S.siptag_subscription_state_str, <intptr_t>S.siptag_reason_str,
        <intptr_t>S.siptag_if_match_str, <intptr_t>S.siptag_allow_events_str,
        <intptr_t>S.tptag_dump, <intptr_t>S.tptag_log, <intptr_t>S.tptag_certificate, <intptr_t>S.tptag_tls_verify_peer,
        <intptr_t>S.tptag_tls_verify_policy, <intptr_t>S.tptag_tls_verify_depth,
        <intptr_t>S.ntatag_udp_mtu, <intptr_t>S.ntatag_sip_t1x64, <intptr_t>S.ntatag_default_proxy,
        <intptr_t>S.ntatag_use_naptr, <intptr_t>S.ntatag_use_srv, <intptr_t>S.ntatag_client_rport,
        <intptr_t>S.ntatag_server_rport, <intptr_t>S.tptag_udp_rmem, <intptr_t>S.tptag_udp_wmem,
        <intptr_t>S.srestag_resolv_conf,
    ]
    assert len(types) == len(_TAG_NAMES)
    for i, (name, tt) in enumerate(zip(_TAG_NAMES, types)):
        _TAG_TYPES[i] = <S.tag_type_t><intptr_t>tt
        _TAG_INDEX[name] = i

_init_tags()

_OPS = {
    "handle": OP_HANDLE, "register": OP_REGISTER, "unregister": OP_UNREGISTER,
    "invite": OP_INVITE, "ack": OP_ACK, "bye": OP_BYE, "cancel": OP_CANCEL,
    "message": OP_MESSAGE, "options": OP_OPTIONS, "info": OP_INFO, "subscribe": OP_SUBSCRIBE,
    "unsubscribe": OP_UNSUBSCRIBE, "publish": OP_PUBLISH, "unpublish": OP_UNPUBLISH,
    "notify": OP_NOTIFY, "respond": OP_RESPOND,
}

_CALLSTATES = {
    S.nua_callstate_init: "init", S.nua_callstate_authenticating: "authenticating",
    S.nua_callstate_calling: "calling", S.nua_callstate_proceeding: "proceeding",
    S.nua_callstate_completing: "completing", S.nua_callstate_received: "received",
    S.nua_callstate_early: "early", S.nua_callstate_completed: "completed",
    S.nua_callstate_ready: "ready", S.nua_callstate_terminating: "terminating",
    S.nua_callstate_terminated: "terminated",
}


cdef cmd_t *build_cmd(int op, object tags) except NULL:
    """A command with its tag list; strings are copied so the caller may go."""
    cdef list items = [] if tags is None else [t for t in tags if t[1] is not None]
    cdef cmd_t *cmd = <cmd_t *>calloc(1, sizeof(cmd_t))
    cdef int i = 0
    cdef bytes b
    if cmd == NULL:
        raise MemoryError()
    cmd.op = op
    cmd.tags = <S.tagi_t *>calloc(len(items) + 1, sizeof(S.tagi_t))
    cmd.strings = <char **>calloc(len(items) + 1, sizeof(char *))
    if cmd.tags == NULL or cmd.strings == NULL:
        cmd_free(cmd)
        raise MemoryError()
    try:
        for name, value in items:
            idx = _TAG_INDEX[name]
            if isinstance(value, bool) or isinstance(value, int):
                set_tag(&cmd.tags[i], _TAG_TYPES[idx], <S.tag_value_t>int(value))
            else:
                b = value.encode("utf-8") if isinstance(value, str) else bytes(value)
                if b"\0" in b:
                    raise ValueError(f"NUL byte in value of SIP tag {name!r}")
                cmd.strings[cmd.nstrings] = strdup(b)
                set_tag(&cmd.tags[i], _TAG_TYPES[idx], <S.tag_value_t>cmd.strings[cmd.nstrings])
                cmd.nstrings += 1
            i += 1
    except BaseException:
        cmd_free(cmd)
        raise
    end_tags(&cmd.tags[i])
    return cmd


cdef class Handle:
    """One Sofia-SIP nua handle (a dialog, registration or transaction).

    Handles are made by EngineCore.create_handle() for outgoing requests or by the
    stack for incoming dialogs; every operation on them runs on the Engine thread.
    """
    cdef hnd_t *h
    cdef EngineCore engine
    cdef readonly long obj_id

    @property
    def released(self) -> bool:
        return self.h == NULL


cdef class CoreEvent:
    """An event from the stack, copied out of Sofia's memory on the Engine thread."""
    cdef readonly str name
    cdef readonly int status
    cdef readonly object reason
    cdef readonly object callstate
    cdef readonly bint auth_retry
    cdef readonly object raw
    cdef readonly Handle handle
    cdef object _message

    @property
    def message(self):
        """The SIP message behind the event as a SIPMessage, or None."""
        if self._message is None and self.raw is not None:
            from sipsimple.core.sipmessage import SIPMessage
            self._message = SIPMessage(self.raw)
        return self._message

    def __repr__(self):
        return f"CoreEvent({self.name!r}, status={self.status}, reason={self.reason!r}, callstate={self.callstate!r})"


cdef class EngineCore:
    """The Engine thread: Sofia-SIP's su_root and nua, a command queue in, events out.

    ``dispatch`` receives what belongs to no Python object: ``on_event(event)`` for
    out-of-dialog requests and stack events, ``on_new_dialog(event)`` for incoming
    INVITE/SUBSCRIBE (it must call ``adopt``), ``on_trace(records)`` for SIP trace
    and ``on_stopped()`` once the thread is about to end. All run on the Engine thread.
    """
    cdef ctx_t *c
    cdef object _thread
    cdef object _ready
    cdef object _start_error
    cdef object _dispatch
    cdef object _nua_tags
    cdef dict _objects
    cdef dict _timers
    cdef dict _phrases
    cdef long _next_id
    cdef int _trace_fd
    cdef long _trace_offset
    cdef readonly long events_delivered
    cdef readonly long batches

    def __cinit__(self):
        self.c = <ctx_t *>calloc(1, sizeof(ctx_t))
        if self.c == NULL:
            raise MemoryError()
        self.c.efd = -1
        self.c.closed = 1
        self._trace_fd = -1
        pthread_mutex_init(&self.c.lock, NULL)

    def __dealloc__(self):
        if self.c != NULL:
            if self._thread is not None and self._thread.is_alive():
                return  # never free what a running loop uses
            pthread_mutex_destroy(&self.c.lock)
            free(self.c)
            self.c = NULL

    def __init__(self, dispatch):
        self._dispatch = dispatch
        self._objects = {}
        self._timers = {}
        self._phrases = {}
        self._next_id = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------ lifecycle

    def start(self, nua_tags, bint trace=False, double timeout=5.0):
        """Start the thread and create the nua with ``nua_tags`` [(name, value)]."""
        if self._thread is not None:
            raise RuntimeError("the engine is already running")
        self._nua_tags = list(nua_tags)
        if trace:
            # Two writers share this file, both appending: Sofia's dump (exact bytes, every
            # retransmission, but only the first iovec of what it sends -- an fwrite() return
            # check bug in tport_dump_iovec -- so no body) and its message log routed here by
            # trace_logger (whole messages, sent ones once). engine.py pairs them up.
            self._trace_fd = memfd_create(b"sipsimple-trace", 0)
            fcntl(self._trace_fd, F_SETFL, O_APPEND)
            self._trace_offset = 0
            self._nua_tags.append(("dump", f"/proc/self/fd/{self._trace_fd}"))
            self._nua_tags.append(("log", 1))
        self._ready = threading.Event()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name="sipsimple-engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._start_error:
            self._thread.join(timeout)
            self._thread = None
            self._close_trace()
            raise RuntimeError(self._start_error or "the engine did not start in time")

    def stop(self, double timeout=10.0):
        """End every dialog (nua_shutdown) and return when the thread is gone."""
        cdef cmd_t *cmd
        if self._thread is None:
            return
        if threading.current_thread() is self._thread:
            raise RuntimeError("stop() cannot be called from the Engine thread")
        cmd = build_cmd(OP_SHUTDOWN, None)
        if not cmd_push(self.c, cmd):
            cmd_free(cmd)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the engine thread did not stop")
        self._thread = None
        self._close_trace()

    def request_stop(self):
        """Ask the stack to shut down without waiting (usable on the Engine thread)."""
        cdef cmd_t *cmd = build_cmd(OP_SHUTDOWN, None)
        if not cmd_push(self.c, cmd):
            cmd_free(cmd)

    def is_engine_thread(self) -> bool:
        return threading.current_thread() is self._thread

    # ------------------------------------------------------------- handles

    def create_handle(self, obj, auth_user=None, auth_pass=None, tags=None) -> Handle:
        """A new outgoing handle whose events go to ``obj._handle_event(event)``."""
        cdef hnd_t *h = <hnd_t *>calloc(1, sizeof(hnd_t))
        cdef Handle handle = Handle.__new__(Handle)
        cdef bytes b
        if h == NULL:
            raise MemoryError()
        if auth_user is not None:
            b = str(auth_user).encode("utf-8")
            h.auth_user = strdup(b)
            b = str(auth_pass or "").encode("utf-8")
            h.auth_pass = strdup(b)
        handle.h = h
        handle.engine = self
        self._adopt(handle, obj)
        try:
            self.command(handle, "handle", tags)
        except BaseException:
            self._objects.pop(handle.obj_id, None)
            handle.h = NULL
            hnd_free(h)
            raise
        return handle

    def adopt(self, Handle handle, obj):
        """Route the events of a handle the stack made (incoming dialog) to ``obj``."""
        self._adopt(handle, obj)

    cdef _adopt(self, Handle handle, obj):
        self._next_id += 1
        handle.obj_id = self._next_id
        if handle.h != NULL:
            handle.h.obj_id = self._next_id
        self._objects[self._next_id] = obj

    def command(self, Handle handle, str op, tags=None, int status=0, phrase=None):
        """Queue nua_<op>(handle, tags) (or nua_respond) for the Engine thread."""
        cdef cmd_t *cmd
        if handle.h == NULL:
            raise RuntimeError("the handle was released")
        cmd = build_cmd(_OPS[op], tags)
        cmd.h = handle.h
        cmd.status = status
        if op == "respond":
            cmd.phrase = self._intern_phrase(status, phrase)
        if not cmd_push(self.c, cmd):
            cmd_free(cmd)
            raise RuntimeError("the engine is not running")

    def live_objects(self) -> list:
        """The Python objects that still own a handle."""
        return list(self._objects.values())

    def release(self, Handle handle):
        """Destroy the nua handle; its events stop and the object is forgotten."""
        cdef cmd_t *cmd
        self._objects.pop(handle.obj_id, None)
        if handle.h == NULL:
            return
        cmd = build_cmd(OP_DESTROY, None)
        cmd.h = handle.h
        handle.h = NULL
        if not cmd_push(self.c, cmd):
            cmd_free(cmd)  # the teardown destroys every handle with the nua

    cdef const char *_intern_phrase(self, int status, phrase) except? NULL:
        # nua_respond() keeps the phrase pointer, so it must live as long as the engine
        cdef const char *known
        if phrase is None:
            known = S.sip_status_phrase(status)
            if known == NULL:
                known = ""
            return known
        b = phrase.encode("utf-8") if isinstance(phrase, str) else bytes(phrase)
        if b"\r" in b or b"\n" in b or b"\0" in b:
            raise ValueError("a reason phrase cannot hold CR, LF or NUL")
        b = self._phrases.setdefault(b, b)
        return <const char *>b

    # -------------------------------------------------------------- timers

    def call_later(self, double delay, callback) -> int:
        """Run ``callback()`` on the Engine thread after ``delay`` seconds."""
        cdef cmd_t *cmd = build_cmd(OP_TIMER_SET, None)
        self._next_id += 1
        cdef long timer_id = self._next_id
        cmd.arg = timer_id
        cmd.arg2 = <long>(delay * 1000)
        self._timers[timer_id] = callback
        if not cmd_push(self.c, cmd):
            cmd_free(cmd)
            del self._timers[timer_id]
            raise RuntimeError("the engine is not running")
        return timer_id

    def cancel_timer(self, long timer_id):
        cdef cmd_t *cmd
        if self._timers.pop(timer_id, None) is None:
            return
        cmd = build_cmd(OP_TIMER_CANCEL, None)
        cmd.arg = timer_id
        if not cmd_push(self.c, cmd):
            cmd_free(cmd)

    # ------------------------------------------------------- engine thread

    def _run(self):
        cdef ctx_t *c = self.c
        cdef S.su_wait_t w
        cdef cmd_t *create = NULL
        cdef int ok = 0
        try:
            create = build_cmd(0, self._nua_tags)
        except Exception as exc:
            self._start_error = f"invalid engine option: {exc}"
            self._ready.set()
            return
        with nogil:
            S.su_init()
            if self._trace_fd >= 0:
                S.su_log_redirect(S.su_log_default, trace_logger, <void *><intptr_t>self._trace_fd)
            else:
                S.su_log_redirect(S.su_log_default, silent_logger, NULL)
            c.root = S.su_root_create(NULL)
            if c.root != NULL:
                # without this nua_create() starts a second thread for the stack
                S.su_root_threading(c.root, 0)
                c.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
                S.su_wait_create(&w, c.efd, S.SU_WAIT_IN)
                c.wait_index = S.su_root_register(c.root, &w, wake_cb, c, 0)
                c.nua = S.nua_create(c.root, nua_cb, c, S.tag_next, <S.tag_value_t>create.tags)
                ok = c.nua != NULL
        cmd_free(create)
        if not ok:
            self._start_error = "could not create the SIP stack (address in use or not local?)"
            self._teardown()
            self._ready.set()
            return
        pthread_mutex_lock(&c.lock)
        c.closed = 0
        pthread_mutex_unlock(&c.lock)
        self._ready.set()
        try:
            while True:
                with nogil:
                    while c.ev_head == NULL and not self._finished() and not self._trace_pending():
                        S.su_root_step(c.root, 100)
                self._deliver()
                if self._finished():
                    break
        finally:
            self._teardown()
            self._deliver()
            for obj in list(self._objects.values()):
                try:
                    obj._engine_stopped()
                except AttributeError:
                    pass
                except Exception:
                    _log.exception("engine stop handler failed")
            self._objects.clear()
            try:
                self._dispatch.on_stopped()
            except Exception:
                _log.exception("engine stop handler failed")

    cdef bint _finished(self) noexcept nogil:
        if not self.c.shutting_down:
            return False
        return self.c.shutdown_done or now_s() > self.c.shutdown_deadline

    cdef bint _trace_pending(self) noexcept nogil:
        if self._trace_fd < 0:
            return False
        return lseek(self._trace_fd, 0, SEEK_END) > self._trace_offset

    cdef void _teardown(self):
        cdef ctx_t *c = self.c
        cdef cmd_t *cmd
        with nogil:
            pthread_mutex_lock(&c.lock)
            c.closed = 1
            pthread_mutex_unlock(&c.lock)
            timers_destroy(c)
            if c.nua != NULL:
                S.nua_destroy(c.nua)   # also destroys the handles left
                c.nua = NULL
            if c.root != NULL:
                S.su_root_deregister(c.root, c.wait_index)
                S.su_root_destroy(c.root)
                c.root = NULL
            pthread_mutex_lock(&c.lock)
            if c.efd >= 0:
                close(c.efd)
                c.efd = -1
            while c.cmd_head != NULL:
                cmd = c.cmd_head
                c.cmd_head = cmd.next
                cmd_free(cmd)
            c.cmd_tail = NULL
            pthread_mutex_unlock(&c.lock)
            c.shutting_down = 0
            c.shutdown_done = 0
            S.su_deinit()
        self._timers.clear()

    cdef void _close_trace(self):
        if self._trace_fd >= 0:
            close(self._trace_fd)
            self._trace_fd = -1

    cdef void _deliver(self):
        """Engine thread, GIL held: hand the batch of events to Python."""
        cdef ev_t *e = self.c.ev_head
        cdef ev_t *nxt
        cdef CoreEvent ev
        cdef Handle handle
        self.c.ev_head = self.c.ev_tail = NULL
        if self._trace_fd >= 0:
            self._deliver_trace()
        if e != NULL:
            self.batches += 1
        while e != NULL:
            nxt = e.next
            try:
                if e.kind == EV_TIMER:
                    callback = self._timers.pop(e.timer_id, None)
                    if callback is not None:
                        callback()
                else:
                    self.events_delivered += 1
                    self._deliver_one(e)
            except Exception:
                _log.exception("error while handling a SIP event")
            ev_free(e)
            e = nxt
        free_retired(self.c)

    cdef void _deliver_one(self, ev_t *e) except *:
        cdef CoreEvent ev = CoreEvent.__new__(CoreEvent)
        cdef Handle handle
        cdef hnd_t *h = e.h
        if h != NULL and h.destroyed:
            return
        ev.name = S.nua_event_name(<S.nua_event_t>e.event).decode("ascii")
        ev.status = e.status
        ev.reason = e.phrase.decode("utf-8", "replace") if e.phrase != NULL else None
        ev.callstate = _CALLSTATES.get(e.callstate) if e.callstate >= 0 else None
        ev.auth_retry = e.auth_retry
        ev.raw = e.raw[:e.raw_len] if e.raw != NULL else None
        if h == NULL:
            self._dispatch.on_event(ev)
            return
        if h.obj_id == 0:
            handle = Handle.__new__(Handle)
            handle.h = h
            handle.engine = self
            ev.handle = handle
            self._dispatch.on_new_dialog(ev)
            if h.obj_id == 0 and not h.destroyed:
                # nobody took it: refuse rather than leave the caller hanging
                self.command(handle, "respond", None, 480, None)
                self.release(handle)
            return
        obj = self._objects.get(h.obj_id)
        if obj is not None:
            obj._handle_event(ev)

    cdef void _deliver_trace(self):
        cdef long end = lseek(self._trace_fd, 0, SEEK_END)
        cdef long size = end - self._trace_offset
        cdef bytes data
        cdef long done
        if size <= 0:
            return
        data = b"\0" * size
        pread(self._trace_fd, <char *>data, size, self._trace_offset)
        # both writers run on this thread, between su_root steps: what is there is whole
        done = size
        self._trace_offset += done
        if self._trace_offset == end:
            ftruncate(self._trace_fd, 0)
            self._trace_offset = 0
        try:
            self._dispatch.on_trace(data[:done])
        except Exception:
            _log.exception("error while handling the SIP trace")
