# C declarations for libgsm (gsm.h); 160 samples <-> 33 bytes.

cdef extern from "gsm.h" nogil:
    ctypedef struct gsm_state:
        pass
    ctypedef gsm_state *gsm
    ctypedef short gsm_signal
    ctypedef unsigned char gsm_byte
    gsm gsm_create()
    void gsm_destroy(gsm g)
    void gsm_encode(gsm g, gsm_signal *source, gsm_byte *c)
    int gsm_decode(gsm g, gsm_byte *c, gsm_signal *target)
