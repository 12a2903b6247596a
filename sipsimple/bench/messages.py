"""The SIP messages the ``parse`` benchmark parses and prints.

Everyday traffic (an INVITE with SDP, its 200 OK, a REGISTER) and a few
messages in the spirit of RFC 4475's torture tests that are odd but valid:
folded headers, compact header names, unusual spacing, escaped URIs, several
Via values in one header line, and long headers. All were written for this
benchmark.
"""

from __future__ import annotations

__all__ = ["MESSAGES"]


def _msg(text: str, body: str = "") -> bytes:
    """Build a message from lines; ``{len}`` is replaced by the body length."""
    payload = body.replace("\n", "\r\n").encode()
    head = text.strip("\n").replace("{len}", str(len(payload)))
    return head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + payload


_SDP = """v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 49170 RTP/AVP 96 9 0 8 101
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=sendrecv
m=message 2855 TCP/TLS/MSRP *
a=accept-types:message/cpim text/plain
a=path:msrps://192.0.2.10:2855/kjhd37s2s20w2a;tcp
"""

_SDP_ANSWER = """v=0
o=bob 2808844564 2808844564 IN IP4 198.51.100.7
s=-
c=IN IP4 198.51.100.7
t=0 0
m=audio 3456 RTP/AVP 96 101
a=rtpmap:96 opus/48000/2
a=rtpmap:101 telephone-event/8000
a=sendrecv
"""

MESSAGES: dict[str, bytes] = {
    "invite_sdp": _msg("""
INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com;transport=udp>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, NOTIFY, REFER, UPDATE, PRACK
Supported: replaces, timer, 100rel
Session-Expires: 1800;refresher=uac
Min-SE: 90
User-Agent: sipsimple-bench/1.0
Content-Type: application/sdp
Content-Length: {len}
""", _SDP),
    "ok_200": _msg("""
SIP/2.0 200 OK
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bKnashds8;received=192.0.2.3
Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1
Record-Route: <sip:server10.biloxi.example.com;lr>, <sip:bigbox3.site3.atlanta.example.com;lr>
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4>
Require: timer
Session-Expires: 1800;refresher=uac
Server: sipsimple-bench/1.0
Content-Type: application/sdp
Content-Length: {len}
""", _SDP_ANSWER),
    "register": _msg("""
REGISTER sip:registrar.biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Bob <sip:bob@biloxi.example.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@192.0.2.4>;expires=3600;q=0.7, <sip:bob@198.51.100.9:5062;transport=tcp>;q=0.3
Authorization: Digest username="bob", realm="biloxi.example.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:registrar.biloxi.example.com", response="5a8ab0a8f3b1c1f2e0c4ba4f1b6c8d8e", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b"
Expires: 7200
Content-Length: 0
"""),
    "folded": _msg("""
OPTIONS sip:carol@chicago.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com
 ;branch=z9hG4bKhjhs8ass877
Max-Forwards: 70
To: <sip:carol@chicago.example.com>
From: Alice
\t<sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 63104
  OPTIONS
Subject: a subject that was
    folded over
\tthree lines
Contact: <sip:alice@pc33.atlanta.example.com>
Accept: application/sdp
Content-Length: 0
"""),
    "compact": _msg("""
MESSAGE sip:user@example.com SIP/2.0
v: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bK-compact-1
f: <sip:sender@example.org>;tag=aa01
t: <sip:user@example.com>
i: compact.forms.19283@192.0.2.77
CSeq: 20 MESSAGE
m: <sip:sender@192.0.2.77:5060>
k: timer, path
s: compact header names
Max-Forwards: 70
c: text/plain
l: {len}
""", "compact forms are valid\n"),
    "spacing": _msg("""
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 0
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;rport;branch=390skdjuw
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33
"""),
    "escaped_uri": _msg("""
INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {len}
""", _SDP_ANSWER),
    "multi_via": _msg("""
BYE sip:bob@192.0.2.4 SIP/2.0
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1, SIP/2.0/TCP p2.example.com:5070;branch=z9hG4bK2;received=192.0.2.9, SIP/2.0/TLS p3.example.com;branch=z9hG4bK3;rport=5061
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds
Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>
Max-Forwards: 68
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 231 BYE
Content-Length: 0
"""),
    "long_headers": _msg(
        "NOTIFY sip:watcher@192.0.2.44:5060 SIP/2.0\n"
        "Via: SIP/2.0/UDP presence.example.com;branch=z9hG4bK" + "b" * 200 + "\n"
        "Via: " + ", ".join(f"SIP/2.0/UDP relay{i}.example.com;branch=z9hG4bK{i:04d}" for i in range(12)) + "\n"
        "Max-Forwards: 70\n"
        "To: <sip:watcher@example.com>;tag=" + "t" * 100 + "\n"
        "From: <sip:presentity@example.com>;tag=" + "f" * 100 + "\n"
        "Call-ID: " + "c" * 300 + "@example.com\n"
        "CSeq: 7 NOTIFY\n"
        "Event: presence\n"
        "Subscription-State: active;expires=3599\n"
        "Record-Route: " + ", ".join(f"<sip:proxy{i}.example.com;lr>" for i in range(20)) + "\n"
        "X-Long-Token: " + "0123456789abcdef" * 64 + "\n"
        "Subject: " + " ".join(["long subject words"] * 40) + "\n"
        "Content-Type: application/pidf+xml\n"
        "Content-Length: {len}\n",
        '<?xml version="1.0"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:presentity@example.com">\n'
        '<tuple id="t1"><status><basic>open</basic></status></tuple>\n</presence>\n',
    ),
}
