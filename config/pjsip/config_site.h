/*
 * PJSIP compile-time settings for Victoria SIP (issue 14): a server that answers hundreds of calls in one
 * process, not the softphone the pjsua2-python wheel is built for (4 call slots, a select() I/O queue of 64
 * handles that aborts the process under ~100 INVITE/s).
 *
 * scripts/build_pjsip.py copies this file to pjlib/include/pj/config_site.h and runs
 *     ./configure --enable-epoll --disable-video --disable-sound --disable-opus ... (see CONFIGURE_FLAGS there)
 * with CFLAGS="-O2 -fPIC" (a static build linked whole into _pjsua2.so, which then needs only system libraries:
 * libssl3, libcrypto, libuuid, libstdc++, libc). OpenSSL is on (libssl-dev at build time): SIP over TLS, and SRTP
 * with the bundled libsrtp. --enable-epoll selects the epoll I/O queue (pjlib logs "epoll I/O Queue created").
 *
 * Every macro below is guarded by #ifndef in pjlib/pjsip/pjmedia (pj/config.h, pj/ioqueue.h, pjsip/sip_config.h,
 * pjsua-lib/pjsua.h), so the value here wins. The build reads the compiled values back and ships them in
 * pjsua2_build.json (victoria_sip/adapters/sip/pjsip_build.py reads it). Changing this file changes the build's
 * cache key: the next ./scripts/setup.sh rebuilds PJSIP.
 */

/* Call slots: pjsua preallocates this many calls. It is the default of uaConfig.maxCalls, and a larger maxCalls
 * is silently cut to it at libInit (pjsua_call.c), which is why Victoria must know the value. Victoria keeps one
 * free to answer busy itself: up to 511 concurrent calls. PJSIP's PJ_CONFIG_MAXIMUM_SPEED preset uses 512 too. */
#define PJSUA_MAX_CALLS                 512

/* Sockets one I/O queue can hold. pjsua has two queues: SIP's (transports, TCP/TLS connections) and the media
 * endpoint's, where each call leg holds two sockets (RTP and RTCP) and a closed socket's slot is reused only after
 * PJ_IOQUEUE_KEY_FREE_DELAY (500 ms). 512 calls = 1024 sockets; 8192 leaves room for bursts of short calls (the
 * stock queue ran out of slots after ~40 quick calls and asserted). epoll preallocates the keys: ~2 MB per queue.
 * Mind the process's RLIMIT_NOFILE (often 1024): 2 descriptors per call plus the rest. */
#define PJ_IOQUEUE_MAX_HANDLES          8192

/* Events one poll of a queue dispatches (default 16). The media queue is polled by one C worker thread: with
 * hundreds of RTP streams (50 packets/s each) a larger batch means fewer epoll_wait calls per packet. */
#define PJ_IOQUEUE_MAX_EVENTS_IN_SINGLE_POLL    64

/* Conference bridge slots: every call's stream takes one, Victoria's CallMediaPort one more (a consultation call
 * during a transfer is a call too), file players and recorders one each, plus slot 0 (the null sound device).
 * The default of medConfig.maxMediaPorts. */
#define PJSUA_MAX_PLAYERS               32      /* Victoria plays through its own port; players are for tools/tests */
#define PJSUA_MAX_RECORDERS             32
#define PJSUA_MAX_CONF_PORTS            (2*PJSUA_MAX_CALLS + PJSUA_MAX_PLAYERS + PJSUA_MAX_RECORDERS + 2)

/* Hash table sizes (buckets, 2^n-1; not caps): transactions and dialogs. A 1000 INVITE/s flood answered with
 * errors keeps each INVITE transaction ~32 s (Timer H) when no ACK comes: tens of thousands at once, so 8191
 * buckets instead of 1023 keep lookups short. Dialogs: a few per call (calls, transfers, subscriptions).
 * The timer heap is sized from both and grows by itself. */
#define PJSIP_MAX_TSX_COUNT             (8192-1)
#define PJSIP_MAX_DIALOG_COUNT          (2048-1)

/* Transaction timeout (Timer H, and B, F, J), 32 s by default (64*T1). An INVITE answered 403/486 whose ACK never
 * comes (a flood) keeps its transaction and dialog, ~28 KB, that long: memory plateaus at rate x timeout (measured:
 * 1000 INVITE/s -> +315 MB at 32 s). On a LAN an ACK or a response comes within a second; 8 s still leaves five
 * retransmissions (0.5, 1, 2, 4 s) for a lossy link. It also bounds how long a REGISTER, BYE or OPTIONS with no
 * answer at all is waited for. */
#define PJSIP_TD_TIMEOUT                8000

/* TLS listener (issue 16): PJSIP keeps the OpenSSL context, with the certificate and key it read, of the first
 * connection it accepted, for every later one (TLS session reuse). 0: each accepted connection reads the files
 * afresh (a few ms on a connection that lives for hours), so a certificate renewed on disk serves the next PBX
 * connection while calls in progress keep theirs; SIGHUP makes Victoria check the new files and say so. Client
 * connections (registrations) always read them afresh. scripts/build_pjsip.py adds the #ifndef this needs. */
#define SERVER_SUPPORT_SESSION_REUSE    0

/* Unchanged on purpose: PJSUA_MAX_ACC (8 accounts), PJ_LOG_MAX_LEVEL (5), assertions on (PJ_DEBUG as configured),
 * PJSIP_UDP_SO_RCVBUF_SIZE (kernel default; a deeper buffer only delays the legitimate call after a flood). */
