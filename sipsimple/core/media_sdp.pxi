# media_sdp.pxi: codec catalogue, payload type negotiation helpers and SDES
# (RFC 4568) crypto attributes. Pure configuration code, runs with the GIL.


class AudioCodec:
    """Description of one supported audio codec."""

    __slots__ = ("name", "clock_rate", "channels", "sample_rate", "static_pt", "fmtp", "_cid")

    def __init__(self, name, clock_rate, channels, sample_rate, static_pt, fmtp, cid):
        self.name = name                # SDP encoding name as we write it
        self.clock_rate = clock_rate    # RTP clock rate (rtpmap)
        self.channels = channels        # rtpmap channel count
        self.sample_rate = sample_rate  # audio sample rate the codec works at
        self.static_pt = static_pt      # RFC 3551 static payload type, or None
        self.fmtp = fmtp                # fmtp we offer, or ""
        self._cid = cid

    def __repr__(self):
        return "AudioCodec(%s/%d)" % (self.name, self.clock_rate)


_CODECS = {
    "opus": AudioCodec("opus", 48000, 2, 48000, None, "useinbandfec=1", C_OPUS),
    "G722": AudioCodec("G722", 8000, 1, 16000, 9, "", C_G722),
    "PCMU": AudioCodec("PCMU", 8000, 1, 8000, 0, "", C_PCMU),
    "PCMA": AudioCodec("PCMA", 8000, 1, 8000, 8, "", C_PCMA),
    "GSM": AudioCodec("GSM", 8000, 1, 8000, 3, "", C_GSM),
}
DEFAULT_CODECS = ("opus", "G722", "PCMU", "PCMA", "GSM")
_DYNAMIC_PT = {"opus": 96}
_TE_PT = {8000: 101, 48000: 102, 16000: 103}


def available_codecs():
    """All codecs this engine implements, in the default preference order."""
    return [_CODECS[n] for n in DEFAULT_CODECS]


def _codec_by_name(name, rate=None):
    for key, codec in _CODECS.items():
        if key.lower() == str(name).lower() and (rate is None or codec.clock_rate == rate):
            return codec
    return None


# ---------------------------------------------------------------------------
# SDES

# suite -> (master key + salt length, libsrtp policy code)
SRTP_SUITES = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "AEAD_AES_128_GCM": 28,
}
DEFAULT_SRTP_SUITES = ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


def generate_srtp_key(suite):
    """Random master key + salt of the right length for ``suite``."""
    return _os.urandom(SRTP_SUITES[suite])


def build_crypto_line(tag, suite, key):
    """The value of an ``a=crypto`` attribute: ``'1 AES_CM_128_HMAC_SHA1_80 inline:...'``."""
    if len(key) != SRTP_SUITES[suite]:
        raise ValueError("wrong key length for %s" % suite)
    return "%d %s inline:%s" % (tag, suite, _base64.b64encode(key).decode("ascii"))


def parse_crypto_line(line):
    """Parse an ``a=crypto`` value. Returns (tag, suite, key) or raises ValueError.

    Lifetime and MKI are accepted when the MKI is absent or 1:1-free; session
    parameters other than none are refused (UNENCRYPTED_* and others).
    """
    line = line.strip()
    if line.startswith("a="):
        line = line[2:]
    if line.startswith("crypto:"):
        line = line[7:]
    parts = line.split()
    if len(parts) < 3:
        raise ValueError("malformed crypto attribute")
    if len(parts) > 3:
        raise ValueError("unsupported session parameters: %s" % " ".join(parts[3:]))
    try:
        tag = int(parts[0])
    except ValueError:
        raise ValueError("bad crypto tag") from None
    suite = parts[1]
    if suite not in SRTP_SUITES:
        raise ValueError("unsupported crypto suite %s" % suite)
    params = parts[2].split(";")
    if len(params) != 1:
        raise ValueError("multiple keys are not supported")
    if not params[0].startswith("inline:"):
        raise ValueError("only inline keys are supported")
    fields = params[0][7:].split("|")
    for extra in fields[1:]:
        if ":" in extra:                 # MKI
            raise ValueError("MKI is not supported")
    try:
        key = _base64.b64decode(fields[0] + "=" * (-len(fields[0]) % 4), validate=True)
    except Exception:
        raise ValueError("bad base64 key") from None
    if len(key) != SRTP_SUITES[suite]:
        raise ValueError("wrong key length for %s" % suite)
    return tag, suite, key


cdef srtp_t srtp_session(str suite, bytes key, int outbound) except? NULL:
    cdef srtp_policy_t policy
    cdef srtp_t session = NULL
    cdef unsigned char keybuf[64]
    memset(&policy, 0, sizeof(policy))
    if suite == "AES_CM_128_HMAC_SHA1_80":
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp)
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp)
    elif suite == "AES_CM_128_HMAC_SHA1_32":
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp)
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp)   # RFC 4568: SRTCP keeps 80
    elif suite == "AEAD_AES_128_GCM":
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
    else:
        raise MediaError("unsupported SRTP suite %s" % suite)
    memcpy(keybuf, <const char *>key, len(key))
    policy.key = keybuf
    policy.ssrc.type = ssrc_any_outbound if outbound else ssrc_any_inbound
    policy.window_size = 1024
    policy.allow_repeat_tx = 1
    policy.next = NULL
    if srtp_create(&session, &policy) != srtp_err_status_ok:
        raise MediaError("cannot create the SRTP session")
    return session


# ---------------------------------------------------------------------------
# directions

_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def _can_send(local, remote):
    return local in ("sendrecv", "sendonly") and remote in ("sendrecv", "recvonly")


def _can_recv(local, remote):
    return local in ("sendrecv", "recvonly") and remote in ("sendrecv", "sendonly")
