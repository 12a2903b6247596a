# C declarations for PortAudio (portaudio.h).

cdef extern from "portaudio.h" nogil:
    ctypedef int PaError
    ctypedef int PaDeviceIndex
    ctypedef int PaHostApiIndex
    ctypedef double PaTime
    ctypedef unsigned long PaSampleFormat
    ctypedef unsigned long PaStreamFlags
    ctypedef unsigned long PaStreamCallbackFlags
    ctypedef void PaStream
    PaError paNoError
    PaDeviceIndex paNoDevice
    PaSampleFormat paInt16
    PaStreamFlags paNoFlag
    PaStreamFlags paClipOff
    PaStreamFlags paDitherOff
    int paContinue
    int paComplete

    ctypedef struct PaDeviceInfo:
        int structVersion
        const char *name
        PaHostApiIndex hostApi
        int maxInputChannels
        int maxOutputChannels
        PaTime defaultLowInputLatency
        PaTime defaultLowOutputLatency
        PaTime defaultHighInputLatency
        PaTime defaultHighOutputLatency
        double defaultSampleRate

    ctypedef struct PaHostApiInfo:
        int structVersion
        const char *name

    ctypedef struct PaStreamParameters:
        PaDeviceIndex device
        int channelCount
        PaSampleFormat sampleFormat
        PaTime suggestedLatency
        void *hostApiSpecificStreamInfo

    ctypedef struct PaStreamCallbackTimeInfo:
        PaTime inputBufferAdcTime
        PaTime currentTime
        PaTime outputBufferDacTime

    ctypedef int PaStreamCallback(const void *input, void *output, unsigned long frameCount,
                                  const PaStreamCallbackTimeInfo *timeInfo,
                                  PaStreamCallbackFlags statusFlags, void *userData) noexcept

    PaError Pa_Initialize()
    PaError Pa_Terminate()
    const char *Pa_GetErrorText(PaError errorCode)
    PaDeviceIndex Pa_GetDeviceCount()
    PaDeviceIndex Pa_GetDefaultInputDevice()
    PaDeviceIndex Pa_GetDefaultOutputDevice()
    const PaDeviceInfo *Pa_GetDeviceInfo(PaDeviceIndex device)
    const PaHostApiInfo *Pa_GetHostApiInfo(PaHostApiIndex hostApi)
    PaError Pa_OpenStream(PaStream **stream, const PaStreamParameters *inputParameters,
                          const PaStreamParameters *outputParameters, double sampleRate,
                          unsigned long framesPerBuffer, PaStreamFlags streamFlags,
                          PaStreamCallback *streamCallback, void *userData)
    PaError Pa_StartStream(PaStream *stream)
    PaError Pa_StopStream(PaStream *stream)
    PaError Pa_AbortStream(PaStream *stream)
    PaError Pa_CloseStream(PaStream *stream)
