# cython: language_level=3
"""sipsimple media engine: RTP/SRTP audio streams, codecs and the conference bridge.

Everything that runs per packet or per frame (receive, SRTP, jitter buffer,
decode, mix, encode, send, record) runs in C on one media thread without the
GIL. Python configures ports and streams and reads statistics; events from the
media thread reach Python through an eventfd drained by one pump thread.
"""

from libc.math cimport cos, exp, log10, sin, sqrt
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdio cimport FILE, fclose, fflush, fopen, fread, fseek, ftell, fwrite, SEEK_END, SEEK_SET
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove, memset, strncpy
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec
from posix.unistd cimport close, read, write

from posix_extra cimport *
from srtp cimport *
from opus cimport *
from spandsp cimport *
from gsm cimport *
from speexdsp cimport *
from portaudio cimport *

import base64 as _base64
import os as _os
import socket as _socket
import struct as _struct
import threading as _threading
import weakref as _weakref

import numpy as _np

include "media_base.pxi"
include "media_codec.pxi"
include "media_jb.pxi"
include "media_rtp.pxi"
include "media_rtcp.pxi"
include "media_ports.pxi"
include "media_device.pxi"
include "media_engine.pxi"
include "media_sdp.pxi"
include "media_transport.pxi"
include "media_api.pxi"
include "media_sdpconv.pxi"

__all__ = [
    "MediaEngine", "AudioMixer", "MediaError", "AudioCodec", "AudioTransport", "BridgePort",
    "ToneGenerator", "WavePlayer", "WaveRecorder", "NumpyTap",
    "available_codecs", "list_devices", "generate_srtp_key", "build_crypto_line", "parse_crypto_line",
    "sdp_from_media", "media_from_sdp",
    "DEFAULT_CODECS", "SRTP_SUITES", "DEFAULT_SRTP_SUITES",
]
