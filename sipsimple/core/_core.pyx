# cython: language_level=3
"""The compiled core of sipsimple: Sofia-SIP bound through Cython.

One Engine thread owns Sofia's su_root and nua (see core_engine.pxi); the nua
callback copies events into C memory (core_queue.pxi); Python threads queue
commands. Parsers for URIs, SIP messages and SDP are in core_parse.pxi.
"""

cimport sofia as S

include "core_queue.pxi"
include "core_engine.pxi"
include "core_parse.pxi"
