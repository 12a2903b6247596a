# media_sdpconv.pxi: conversion between the media description dicts of
# AudioTransport and sipsimple.core.sdp.SDPMediaStream (the audio m= line).

_STATIC_RTPMAP = {0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1)}


def sdp_from_media(desc):
    """Build an ``SDPMediaStream`` (m=audio) from ``AudioTransport.local_media()``."""
    from sipsimple.core.sdp import SDPAttribute, SDPConnection, SDPMediaStream

    address = desc["address"]
    attrs = []
    for pt, name, rate, channels, fmtp in desc["codecs"]:
        attrs.append(SDPAttribute("rtpmap", "%d %s/%d%s" % (pt, name, rate, "/%d" % channels if channels > 1 else "")))
        if fmtp:
            attrs.append(SDPAttribute("fmtp", "%d %s" % (pt, fmtp)))
    if desc.get("ptime"):
        attrs.append(SDPAttribute("ptime", str(desc["ptime"])))
    rtcp_port = desc.get("rtcp_port")
    if rtcp_port and rtcp_port != desc["port"] + 1:
        attrs.append(SDPAttribute("rtcp", str(rtcp_port)))
    if desc.get("rtcp_mux"):
        attrs.append(SDPAttribute("rtcp-mux"))
    for line in desc.get("crypto", ()):
        attrs.append(SDPAttribute("crypto", line))
    attrs.append(SDPAttribute(desc.get("direction", "sendrecv")))
    return SDPMediaStream(
        media="audio", port=desc["port"], transport=desc.get("transport", "RTP/AVP"),
        formats=[str(c[0]) for c in desc["codecs"]],
        connection=SDPConnection(address, "IP6" if ":" in address else "IP4"),
        attributes=attrs)


def media_from_sdp(stream, session=None):
    """The remote media description dict for ``AudioTransport.start()`` from an
    ``SDPMediaStream`` (and its ``SDPSession`` for a session-level c= line)."""
    conn = stream.connection or (session.connection if session is not None else None)
    rtpmap = stream.rtpmap
    fmtp = stream.fmtp
    codecs = []
    for fmt in stream.formats:
        try:
            pt = int(fmt)
        except ValueError:
            continue
        if fmt in rtpmap:
            name, rate, params = rtpmap[fmt]
            channels = int(params) if params and params.isdigit() else 1
        elif pt in _STATIC_RTPMAP:
            name, rate, channels = _STATIC_RTPMAP[pt]
        else:
            continue
        codecs.append((pt, name, rate, channels, fmtp.get(fmt, "")))
    rtcp_port = None
    rtcp = stream.attributes.getfirst("rtcp")
    if rtcp:
        head = rtcp.split()[0]
        if head.isdigit():
            rtcp_port = int(head)
    ptime = stream.attributes.getfirst("ptime")
    direction = stream.direction
    if session is not None and not any(a.name in _DIRECTIONS for a in stream.attributes):
        for a in session.attributes:
            if a.name in _DIRECTIONS:
                direction = a.name
    return {
        "address": conn.address if conn is not None else "0.0.0.0",
        "port": stream.port,
        "rtcp_port": rtcp_port,
        "rtcp_mux": any(a.name == "rtcp-mux" for a in stream.attributes),
        "transport": stream.transport,
        "codecs": codecs,
        "ptime": int(float(ptime)) if ptime and ptime.replace(".", "", 1).isdigit() else None,
        "crypto": [v for v in stream.attributes.getall("crypto") if v],
        "direction": direction,
    }
