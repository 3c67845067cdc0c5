/*
 * ringpipe.h - Unix pipe semantics over a shared-memory ring.
 *
 * The one public header of libringpipe.  Every function follows the
 * read(2)/write(2) convention: -1 (or NULL) on failure with errno set to
 * the value the kernel would give for a pipe in the same situation.
 * See ringpipe(7) and docs/API.md for the full contract.
 */
#ifndef RINGPIPE_H
#define RINGPIPE_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RP_VERSION_MAJOR 0
#define RP_VERSION_MINOR 1

#define RP_PIPE_BUF 4096              /* writes of at most this many bytes are atomic */
#define RP_DEFAULT_CAPACITY 65536
#define RP_MIN_CAPACITY 4096
#define RP_MAX_CAPACITY ((size_t)1 << 32)  /* 4 GiB; larger requests fail with EINVAL */
#define RP_TOKEN_MAX 256

/* One open end of a pipe; opaque, like FILE. */
typedef struct rp_end rp_end;

/* Byte pipes. */
int      rp_pipe(rp_end *ends[2]);
int      rp_pipe2(rp_end *ends[2], int flags, size_t capacity);
int      rp_mkfifo(const char *path, mode_t mode, size_t capacity);
rp_end  *rp_open(const char *path, int flags);
int      rp_unlink(const char *path);

ssize_t  rp_read(rp_end *e, void *buf, size_t n);
ssize_t  rp_write(rp_end *e, const void *buf, size_t n);
ssize_t  rp_readv(rp_end *e, const struct iovec *iov, int iovcnt);
ssize_t  rp_writev(rp_end *e, const struct iovec *iov, int iovcnt);
int      rp_close(rp_end *e);

int      rp_fileno(rp_end *e);
int      rp_set_nonblock(rp_end *e, int on);
ssize_t  rp_nread(rp_end *e);
size_t   rp_capacity(rp_end *e);

/* Zero-copy. */
void        *rp_write_reserve(rp_end *e, size_t n);
int          rp_write_commit(rp_end *e, size_t n);
const void  *rp_read_peek(rp_end *e, size_t *n);
int          rp_read_consume(rp_end *e, size_t n);

/* Across exec and to unrelated processes. */
int      rp_export(rp_end *e, char *token, size_t len);
rp_end  *rp_import(const char *token);

/* Messages: connections in the model of multiprocessing.Pipe(). */
typedef struct rp_conn rp_conn;

#define RP_DEFAULT_MAX_MESSAGE ((size_t)1 << 30)  /* rp_recv_alloc's limit */

/* duplex=0: conns[0] receives, conns[1] sends */
int      rp_conn_pipe(rp_conn *conns[2], int duplex);
rp_conn *rp_conn_from_ends(rp_end *rd, rp_end *wr);     /* either may be NULL */
int      rp_send(rp_conn *c, const void *msg, size_t len);
ssize_t  rp_recv(rp_conn *c, void *buf, size_t cap);
ssize_t  rp_recv_alloc(rp_conn *c, void **msg);          /* caller frees with free() */
int      rp_poll(rp_conn *c, int timeout_ms);            /* 1: message or EOF, 0: timeout */
int      rp_conn_fileno(rp_conn *c);
int      rp_conn_close(rp_conn *c);                      /* also closes the ends it wraps */
int      rp_conn_set_max_message(rp_conn *c, size_t max); /* bound rp_recv_alloc */

#ifdef __cplusplus
}
#endif
#endif /* RINGPIPE_H */
