# C declarations for libopus (opus/opus.h).

from libc.stdint cimport int16_t, int32_t

cdef extern from "opus/opus.h" nogil:
    ctypedef struct OpusEncoder:
        pass
    ctypedef struct OpusDecoder:
        pass
    int OPUS_OK
    int OPUS_APPLICATION_VOIP
    int OPUS_AUTO
    int OPUS_SET_INBAND_FEC_REQUEST
    int OPUS_SET_DTX_REQUEST
    int OPUS_SET_PACKET_LOSS_PERC_REQUEST
    int OPUS_SET_BITRATE_REQUEST
    int OPUS_SET_COMPLEXITY_REQUEST
    int OPUS_SET_SIGNAL_REQUEST
    int OPUS_SIGNAL_VOICE

    OpusEncoder *opus_encoder_create(int32_t Fs, int channels, int application, int *error)
    void opus_encoder_destroy(OpusEncoder *st)
    int32_t opus_encode(OpusEncoder *st, const int16_t *pcm, int frame_size,
                        unsigned char *data, int32_t max_data_bytes)
    int opus_encoder_ctl(OpusEncoder *st, int request, ...)
    OpusDecoder *opus_decoder_create(int32_t Fs, int channels, int *error)
    void opus_decoder_destroy(OpusDecoder *st)
    int opus_decode(OpusDecoder *st, const unsigned char *data, int32_t len,
                    int16_t *pcm, int frame_size, int decode_fec)
    int opus_packet_get_nb_samples(const unsigned char *packet, int32_t len, int32_t Fs)
