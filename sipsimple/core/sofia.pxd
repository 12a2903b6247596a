# C declarations for the parts of Sofia-SIP (libsofia-sip-ua, pkg-config
# sofia-sip-ua) that the core binds: su (roots, timers, homes, logging),
# url, msg/sip (headers we read), sdp (parser and printer), nua (the user
# agent API) and the tag lists they take.
#
# Conventions:
#  * everything is `nogil`: the Engine thread calls these with the GIL released;
#  * structs we only pass around are opaque, structs we read list only the
#    fields we touch (Cython never emits extern struct definitions);
#  * Sofia's tag *macros* expand to two C arguments, so Cython cannot use them:
#    we declare the tag objects (nutag_url, siptag_payload_str, ...) and build
#    tagi_t arrays that end with a NULL tag, passed as one TAG_NEXT(list) pair.

from libc.stdint cimport intptr_t, uint32_t, uint64_t


cdef extern from "<sofia-sip/su_tag.h>" nogil:
    cdef struct tag_type_s:
        pass
    ctypedef const tag_type_s *tag_type_t
    ctypedef intptr_t tag_value_t
    ctypedef struct tagi_t:
        tag_type_t t_tag
        tag_value_t t_value
    tag_type_t tag_null
    tag_type_t tag_next
    tag_type_t tag_skip
    tagi_t *tl_find(const tagi_t *lst, tag_type_t tt)


cdef extern from "<sofia-sip/su.h>" nogil:
    int su_init()
    void su_deinit()


cdef extern from "<sofia-sip/su_alloc.h>" nogil:
    ctypedef struct su_home_t:
        pass
    su_home_t *su_home_new(size_t size)
    int su_home_unref(su_home_t *home)
    void su_free(su_home_t *home, void *data)


cdef extern from "<sofia-sip/su_wait.h>" nogil:
    ctypedef struct su_root_t:
        pass
    ctypedef struct su_timer_t:
        pass
    ctypedef struct _su_task_t:
        pass
    ctypedef const _su_task_t *_su_task_r
    ctypedef long su_duration_t
    ctypedef int su_socket_t
    ctypedef struct su_wait_t:
        pass
    enum: SU_WAIT_IN
    ctypedef int (*su_wakeup_f)(void *root_magic, su_wait_t *w, void *arg) noexcept nogil
    ctypedef void (*su_timer_f)(void *magic, su_timer_t *t, void *arg) noexcept nogil

    su_root_t *su_root_create(void *magic)
    void su_root_destroy(su_root_t *root)
    su_duration_t su_root_step(su_root_t *root, su_duration_t timeout)
    int su_root_threading(su_root_t *root, int enable)
    int su_root_register(su_root_t *root, su_wait_t *w, su_wakeup_f cb, void *arg, int priority)
    int su_root_deregister(su_root_t *root, int index)
    _su_task_r su_root_task(const su_root_t *root)
    int su_wait_create(su_wait_t *w, su_socket_t s, int events)
    su_timer_t *su_timer_create(_su_task_r task, su_duration_t msec)
    void su_timer_destroy(su_timer_t *t)
    int su_timer_set(su_timer_t *t, su_timer_f f, void *arg)
    int su_timer_reset(su_timer_t *t)


cdef extern from "<stdarg.h>":
    ctypedef struct va_list:
        pass


cdef extern from "<sofia-sip/su_log.h>" nogil:
    ctypedef struct su_log_t:
        pass
    ctypedef void su_logger_f(void *stream, const char *fmt, va_list ap) noexcept nogil
    su_log_t su_log_default[1]
    void su_log_redirect(su_log_t *log, su_logger_f *f, void *stream)
    void su_log_set_level(su_log_t *log, unsigned level)


cdef extern from "<sofia-sip/url.h>" nogil:
    ctypedef struct url_t:
        signed char url_type
        const char *url_scheme
        const char *url_user
        const char *url_password
        const char *url_host
        const char *url_port
        const char *url_path
        const char *url_params
        const char *url_headers
        const char *url_fragment
    enum:
        url_invalid
        url_sip
        url_sips
    url_t *url_make(su_home_t *h, const char *s)
    Py_ssize_t url_e(char *buf, Py_ssize_t n, const url_t *url)


cdef extern from "<sofia-sip/msg.h>" nogil:
    ctypedef struct msg_t:
        pass
    ctypedef struct msg_mclass_t:
        pass
    ctypedef struct msg_pub_t:
        pass
    msg_t *msg_make(const msg_mclass_t *mc, int flags, const void *data, Py_ssize_t len)
    void msg_destroy(msg_t *msg)
    msg_pub_t *msg_object(const msg_t *msg)
    int msg_has_error(const msg_t *msg)
    unsigned msg_extract_errors(const msg_t *msg)
    char *msg_as_string(su_home_t *home, msg_t *msg, msg_pub_t *pub, int flags, size_t *return_len)
    su_home_t *msg_home(msg_t *msg)


cdef extern from "<sofia-sip/msg_types.h>" nogil:
    ctypedef struct msg_common_t:
        void *h_succ
        const void *h_data
        size_t h_len
    ctypedef const char *msg_param_t


cdef extern from "<sofia-sip/msg_header.h>" nogil:
    ctypedef struct msg_header_t:
        pass
    Py_ssize_t msg_header_e(char *b, Py_ssize_t bsiz, const msg_header_t *h, int flags)
    msg_param_t msg_params_find(const msg_param_t *pp, msg_param_t name)


cdef extern from "<sofia-sip/sip.h>" nogil:
    ctypedef struct sip_addr_t "sip_from_t":
        msg_common_t a_common[1]
        const char *a_display
        url_t a_url[1]
        const char *a_tag
    ctypedef struct sip_call_id_t:
        const char *i_id
    ctypedef struct sip_cseq_t:
        uint32_t cs_seq
        const char *cs_method_name
    ctypedef struct sip_content_type_t:
        const char *c_type
    ctypedef struct sip_payload_t:
        msg_common_t pl_common[1]
        char *pl_data
        size_t pl_len
    ctypedef struct sip_request_t:
        msg_common_t rq_common[1]
        const char *rq_method_name
    ctypedef struct sip_status_t:
        msg_common_t st_common[1]
        int st_status
    ctypedef struct sip_auth_t "msg_auth_t":
        sip_auth_t *au_next
        const char *au_scheme
        const msg_param_t *au_params
    ctypedef struct sip_t:
        sip_request_t *sip_request
        sip_status_t *sip_status
        sip_addr_t *sip_from
        sip_addr_t *sip_to
        sip_call_id_t *sip_call_id
        sip_cseq_t *sip_cseq
        sip_content_type_t *sip_content_type
        sip_payload_t *sip_payload
        sip_auth_t *sip_www_authenticate
        sip_auth_t *sip_proxy_authenticate


cdef extern from "<sofia-sip/sip_header.h>" nogil:
    const msg_mclass_t *sip_default_mclass()


cdef extern from "<sofia-sip/sip_status.h>" nogil:
    const char *sip_status_phrase(int status)


cdef extern from "<sofia-sip/sdp.h>" nogil:
    ctypedef struct sdp_parser_t:
        pass
    ctypedef struct sdp_printer_t:
        pass
    ctypedef struct sdp_list_t:
        sdp_list_t *l_next
        const char *l_text
    ctypedef struct sdp_connection_t:
        sdp_connection_t *c_next
        int c_nettype
        int c_addrtype
        const char *c_address
        unsigned c_ttl
        unsigned c_groups
    ctypedef struct sdp_origin_t:
        const char *o_username
        uint64_t o_id
        uint64_t o_version
        sdp_connection_t *o_address
    ctypedef struct sdp_bandwidth_t:
        sdp_bandwidth_t *b_next
        const char *b_modifier_name
        int b_modifier
        unsigned long b_value
    ctypedef struct sdp_time_t:
        sdp_time_t *t_next
        unsigned long t_start
        unsigned long t_stop
    ctypedef struct sdp_attribute_t:
        sdp_attribute_t *a_next
        const char *a_name
        const char *a_value
    ctypedef struct sdp_rtpmap_t:
        sdp_rtpmap_t *rm_next
        const char *rm_encoding
        unsigned long rm_rate
        const char *rm_params
        const char *rm_fmtp
        unsigned rm_pt
    ctypedef struct sdp_media_t:
        sdp_media_t *m_next
        const char *m_type_name
        unsigned long m_port
        unsigned long m_number_of_ports
        const char *m_proto_name
        sdp_list_t *m_format
        sdp_rtpmap_t *m_rtpmaps
        const char *m_information
        sdp_connection_t *m_connections
        sdp_bandwidth_t *m_bandwidths
        sdp_attribute_t *m_attributes
    ctypedef struct sdp_session_t:
        unsigned long sdp_version[1]
        sdp_origin_t *sdp_origin
        const char *sdp_subject
        const char *sdp_information
        const char *sdp_uri
        sdp_connection_t *sdp_connection
        sdp_bandwidth_t *sdp_bandwidths
        sdp_time_t *sdp_time
        sdp_attribute_t *sdp_attributes
        sdp_media_t *sdp_media
    enum:
        sdp_f_strict
        sdp_f_anynet
        sdp_f_mode_manual
        sdp_f_all_rtpmaps
    enum:
        sdp_addr_ip4
        sdp_addr_ip6
    sdp_parser_t *sdp_parse(su_home_t *home, const char *msg, Py_ssize_t msgsize, int flags)
    const char *sdp_parsing_error(sdp_parser_t *p)
    sdp_session_t *sdp_session(sdp_parser_t *p)
    void sdp_parser_free(sdp_parser_t *p)
    sdp_printer_t *sdp_print(su_home_t *home, const sdp_session_t *session, char *buf, Py_ssize_t size, int flags)
    const char *sdp_printing_error(sdp_printer_t *p)
    const char *sdp_message(sdp_printer_t *p)
    Py_ssize_t sdp_message_size(sdp_printer_t *p)
    void sdp_printer_free(sdp_printer_t *p)


cdef extern from "<sofia-sip/nua.h>" nogil:
    ctypedef struct nua_t:
        pass
    ctypedef struct nua_handle_t:
        pass
    ctypedef enum nua_event_t:
        nua_i_error
        nua_i_invite
        nua_i_cancel
        nua_i_ack
        nua_i_fork
        nua_i_active
        nua_i_terminated
        nua_i_state
        nua_i_outbound
        nua_i_bye
        nua_i_options
        nua_i_refer
        nua_i_publish
        nua_i_prack
        nua_i_info
        nua_i_update
        nua_i_message
        nua_i_chat
        nua_i_subscribe
        nua_i_subscription
        nua_i_notify
        nua_i_method
        nua_i_media_error
        nua_r_set_params
        nua_r_get_params
        nua_r_shutdown
        nua_r_notifier
        nua_r_terminate
        nua_r_authorize
        nua_r_register
        nua_r_unregister
        nua_r_invite
        nua_r_cancel
        nua_r_bye
        nua_r_options
        nua_r_refer
        nua_r_publish
        nua_r_unpublish
        nua_r_info
        nua_r_prack
        nua_r_update
        nua_r_message
        nua_r_chat
        nua_r_subscribe
        nua_r_unsubscribe
        nua_r_notify
        nua_r_method
        nua_r_authenticate
    cdef enum nua_callstate:
        nua_callstate_init
        nua_callstate_authenticating
        nua_callstate_calling
        nua_callstate_proceeding
        nua_callstate_completing
        nua_callstate_received
        nua_callstate_early
        nua_callstate_completed
        nua_callstate_ready
        nua_callstate_terminating
        nua_callstate_terminated

    ctypedef void (*nua_callback_f)(nua_event_t event, int status, const char *phrase,
                                    nua_t *nua, void *magic, nua_handle_t *nh, void *hmagic,
                                    const sip_t *sip, tagi_t *tags) noexcept nogil

    nua_t *nua_create(su_root_t *root, nua_callback_f cb, void *magic,
                      tag_type_t tag, tag_value_t value, ...)
    void nua_shutdown(nua_t *nua)
    void nua_destroy(nua_t *nua)
    nua_handle_t *nua_handle(nua_t *nua, void *hmagic, tag_type_t tag, tag_value_t value, ...)
    void nua_handle_bind(nua_handle_t *nh, void *hmagic)
    void nua_handle_destroy(nua_handle_t *nh)
    const char *nua_event_name(nua_event_t event)
    const char *nua_callstate_name(nua_callstate state)

    void nua_register(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_unregister(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_invite(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_ack(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_bye(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_cancel(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_message(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_options(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_info(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_subscribe(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_unsubscribe(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_publish(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_unpublish(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_notify(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    void nua_authenticate(nua_handle_t *nh, tag_type_t tag, tag_value_t value, ...)
    # nua copies the tag list but NOT `phrase`: it must outlive the response
    void nua_respond(nua_handle_t *nh, int status, const char *phrase,
                     tag_type_t tag, tag_value_t value, ...)
    msg_t *nua_current_request(const nua_t *nua)
    # an incoming request kept past its callback, so it can be answered later (NUTAG_WITH_SAVED)
    ctypedef struct nua_saved_event_s "struct nua_saved_event":
        pass
    ctypedef nua_saved_event_s *nua_saved_event_t
    int nua_save_event(nua_t *nua, nua_saved_event_t *return_saved)
    void nua_destroy_event(nua_saved_event_t *saved)
    msg_t *nua_saved_event_request(const nua_saved_event_t *saved)


cdef extern from "<sofia-sip/nua_tag.h>" nogil:
    tag_type_t nutag_url
    tag_type_t nutag_sips_url
    tag_type_t nutag_media_enable
    tag_type_t nutag_appl_method
    tag_type_t nutag_auth
    tag_type_t nutag_m_username
    tag_type_t nutag_m_display
    tag_type_t nutag_m_params
    tag_type_t nutag_with
    tag_type_t nutag_callstate
    tag_type_t nutag_outbound
    tag_type_t nutag_keepalive
    tag_type_t nutag_autoack
    tag_type_t nutag_autoalert
    tag_type_t nutag_autoanswer
    tag_type_t nutag_allow
    tag_type_t nutag_supported
    tag_type_t nutag_user_agent
    tag_type_t nutag_session_timer
    tag_type_t nutag_newsub
    tag_type_t nutag_substate
    tag_type_t nutag_sub_expires
    tag_type_t nutag_retry_count
    tag_type_t nutag_detect_network_updates
    tag_type_t nutag_path_enable
    tag_type_t nutag_early_media
    tag_type_t nutag_initial_route_str
    tag_type_t nutag_registrar
    tag_type_t nutag_enableinvite
    tag_type_t nutag_enablemessage
    tag_type_t nutag_shutdown_events
    tag_type_t nutag_allow_events
    tag_type_t nutag_service_route_enable
    tag_type_t nutag_refresh_without_sdp
    tag_type_t nutag_update_refresh


cdef extern from "<sofia-sip/sip_tag.h>" nogil:
    tag_type_t siptag_to_str
    tag_type_t siptag_from_str
    tag_type_t siptag_content_type_str
    tag_type_t siptag_payload_str
    tag_type_t siptag_expires_str
    tag_type_t siptag_contact_str
    tag_type_t siptag_user_agent_str
    tag_type_t siptag_event_str
    tag_type_t siptag_header_str
    tag_type_t siptag_route_str
    tag_type_t siptag_accept_str
    tag_type_t siptag_subscription_state_str
    tag_type_t siptag_reason_str
    tag_type_t siptag_if_match_str
    tag_type_t siptag_allow_events_str


cdef extern from "<sofia-sip/tport_tag.h>" nogil:
    tag_type_t tptag_dump
    tag_type_t tptag_log
    tag_type_t tptag_certificate
    tag_type_t tptag_tls_verify_peer
    tag_type_t tptag_tls_verify_policy
    tag_type_t tptag_tls_verify_depth
    tag_type_t tptag_udp_rmem
    tag_type_t tptag_udp_wmem
    enum:
        TPTLS_VERIFY_NONE
        TPTLS_VERIFY_OUT
        TPTLS_VERIFY_SUBJECTS_OUT


cdef extern from "<sofia-sip/sresolv.h>" nogil:
    tag_type_t srestag_resolv_conf


cdef extern from "<sofia-sip/nta_tag.h>" nogil:
    tag_type_t ntatag_udp_mtu
    tag_type_t ntatag_sip_t1x64
    tag_type_t ntatag_default_proxy
    tag_type_t ntatag_use_naptr
    tag_type_t ntatag_use_srv
    tag_type_t ntatag_client_rport
    tag_type_t ntatag_server_rport
