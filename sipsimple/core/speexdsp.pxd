# C declarations for speexdsp: resampler and acoustic echo canceller.

from libc.stdint cimport int16_t, uint32_t

cdef extern from "speex/speex_resampler.h" nogil:
    ctypedef struct SpeexResamplerState:
        pass
    SpeexResamplerState *speex_resampler_init(uint32_t nb_channels, uint32_t in_rate, uint32_t out_rate,
                                              int quality, int *err)
    void speex_resampler_destroy(SpeexResamplerState *st)
    int speex_resampler_process_int(SpeexResamplerState *st, uint32_t channel_index, const int16_t *inp,
                                    uint32_t *in_len, int16_t *out, uint32_t *out_len)
    int speex_resampler_skip_zeros(SpeexResamplerState *st)
    int speex_resampler_reset_mem(SpeexResamplerState *st)

cdef extern from "speex/speex_echo.h" nogil:
    ctypedef struct SpeexEchoState:
        pass
    int SPEEX_ECHO_SET_SAMPLING_RATE
    SpeexEchoState *speex_echo_state_init(int frame_size, int filter_length)
    void speex_echo_state_destroy(SpeexEchoState *st)
    void speex_echo_cancellation(SpeexEchoState *st, const int16_t *rec, const int16_t *play, int16_t *out)
    int speex_echo_ctl(SpeexEchoState *st, int request, void *ptr)
    void speex_echo_state_reset(SpeexEchoState *st)

cdef extern from "speex/speex_preprocess.h" nogil:
    ctypedef struct SpeexPreprocessState:
        pass
    int SPEEX_PREPROCESS_SET_ECHO_STATE
    SpeexPreprocessState *speex_preprocess_state_init(int frame_size, int sampling_rate)
    void speex_preprocess_state_destroy(SpeexPreprocessState *st)
    int speex_preprocess_run(SpeexPreprocessState *st, int16_t *x)
    int speex_preprocess_ctl(SpeexPreprocessState *st, int request, void *ptr)
