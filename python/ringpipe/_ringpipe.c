/*
 * _ringpipe.c - CPython binding of libringpipe's message connections.
 *
 * A thin wrapper over the public C API (<ringpipe.h>): rp_pipe2,
 * rp_conn_from_ends, rp_send, rp_recv, rp_poll, rp_conn_fileno,
 * rp_conn_close, rp_export / rp_import, rp_set_nonblock, rp_fileno.
 * The Python classes in ringpipe.connection and ringpipe.queues build the
 * multiprocessing-compatible API on the type defined here.
 *
 * Rules followed throughout:
 *  - the GIL is released around every call that may block or copy a large
 *    buffer (rp_send, rp_recv, rp_poll, poll(2));
 *  - EINTR runs the Python signal handlers (PyErr_CheckSignals): if one
 *    raises (KeyboardInterrupt), the call fails with that exception,
 *    otherwise it is retried.  rp_recv keeps a message a signal cut in
 *    half for the next call, and rp_send restarts a cut message whole;
 *  - a connection is never closed under a call that another thread still
 *    has in flight: close() then only marks it closed, and the last call
 *    to leave closes it (as the kernel keeps a file alive while a read(2)
 *    on it is blocked).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ringpipe.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Messages up to this size are received into a per-connection buffer and
 * copied into a bytes object; larger ones go straight into the bytes. */
#define SCRATCH_SIZE 16384

/* Bumped in the child of every fork(): per-connection counts of calls in
 * flight in other threads do not survive a fork. */
static volatile unsigned long fork_gen;

static void atfork_child(void)
{
	fork_gen++;
}

/* Objects from the standard library, looked up once. */
static PyObject *BufferTooShort;     /* multiprocessing.BufferTooShort */
static PyObject *pickle_loads;       /* pickle.loads (ForkingPickler.loads) */
static PyObject *Pickler_type;       /* _pickle.Pickler */
static PyObject *dispatch_chain;     /* ForkingPickler's reducers, then copyreg's */
static PyObject *str_dump, *str_clear_memo, *str_dispatch_table;

static PyTypeObject SinkType;
static PyTypeObject ChainType;
static PyTypeObject ConnType;

/* ------------------------------------------------------------------ */
/* A write()-only file for the pickler: keeps what it is given.        */

typedef struct {
	PyObject_HEAD
	PyObject *parts;   /* list of bytes-like objects, or NULL */
	PyObject *one;     /* the only part so far */
} Sink;

static PyObject *sink_write(Sink *self, PyObject *b)
{
	Py_ssize_t n = PyObject_Length(b);
	if (n < 0)
		return NULL;
	if (!self->one && !self->parts) {
		Py_INCREF(b);
		self->one = b;
	} else {
		if (!self->parts) {
			self->parts = PyList_New(0);
			if (!self->parts || PyList_Append(self->parts, self->one) < 0)
				return NULL;
			Py_CLEAR(self->one);
		}
		if (PyList_Append(self->parts, b) < 0)
			return NULL;
	}
	return PyLong_FromSsize_t(n);
}

static void sink_clear(Sink *self)
{
	Py_CLEAR(self->one);
	Py_CLEAR(self->parts);
}

/* What was written, as one bytes object (new reference). */
static PyObject *sink_take(Sink *self)
{
	PyObject *r;
	if (self->one && PyBytes_CheckExact(self->one)) {
		r = self->one;
		self->one = NULL;
		return r;
	}
	if (self->one) {
		r = PyBytes_FromObject(self->one);
	} else if (self->parts) {
		PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
		if (!empty)
			return NULL;
		r = _PyBytes_Join(empty, self->parts);
		Py_DECREF(empty);
	} else {
		r = PyBytes_FromStringAndSize(NULL, 0);
	}
	sink_clear(self);
	return r;
}

static void sink_dealloc(Sink *self)
{
	sink_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef sink_methods[] = {
	{ "write", (PyCFunction)sink_write, METH_O, NULL },
	{ NULL, NULL, 0, NULL }
};

static PyTypeObject SinkType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "ringpipe._ringpipe._Sink",
	.tp_basicsize = sizeof(Sink),
	.tp_dealloc = (destructor)sink_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_methods = sink_methods,
	.tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------ */
/* The pickler's dispatch table: ForkingPickler._extra_reducers first,  */
/* then copyreg.dispatch_table, both read live (as ForkingPickler does  */
/* at each construction), without copying them for every message.      */

typedef struct {
	PyObject_HEAD
	PyObject *first, *second;
} Chain;

static PyObject *chain_getitem(Chain *self, PyObject *key)
{
	PyObject *maps[2] = { self->first, self->second };
	for (int i = 0; i < 2; i++) {
		PyObject *v;
		if (PyDict_CheckExact(maps[i])) {
			v = PyDict_GetItemWithError(maps[i], key);
			if (v) {
				Py_INCREF(v);
				return v;
			}
			if (PyErr_Occurred())
				return NULL;
		} else {
			v = PyObject_GetItem(maps[i], key);
			if (v)
				return v;
			if (!PyErr_ExceptionMatches(PyExc_KeyError))
				return NULL;
			PyErr_Clear();
		}
	}
	PyErr_SetObject(PyExc_KeyError, key);
	return NULL;
}

static Py_ssize_t chain_length(Chain *self)
{
	Py_ssize_t a = PyObject_Length(self->first), b = PyObject_Length(self->second);
	return a < 0 || b < 0 ? -1 : a + b;
}

static void chain_dealloc(Chain *self)
{
	Py_XDECREF(self->first);
	Py_XDECREF(self->second);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMappingMethods chain_as_mapping = {
	.mp_length = (lenfunc)chain_length,
	.mp_subscript = (binaryfunc)chain_getitem,
};

static PyTypeObject ChainType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "ringpipe._ringpipe._DispatchChain",
	.tp_basicsize = sizeof(Chain),
	.tp_dealloc = (destructor)chain_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_as_mapping = &chain_as_mapping,
};

/* ------------------------------------------------------------------ */
/* The connection.                                                      */

typedef struct {
	PyObject_HEAD
	rp_conn *conn;          /* NULL once really closed */
	rp_end *rd, *wr;        /* the ends conn wraps (for export) */
	char readable, writable;
	char closing;           /* close() came while calls were in flight */
	int busy;               /* calls in flight (GIL-protected) */
	unsigned long gen;      /* fork_gen when busy was last valid */
	unsigned char *scratch; /* SCRATCH_SIZE bytes, or NULL */
	char scratch_busy;
	char pickler_busy;
	size_t hint;            /* size of the last message received */
	int spin_skip, spin_fails;  /* see spin_readable() */
	PyObject *pickler, *sink, *dump, *clear_memo;
	PyObject *weakreflist;
} Conn;

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static PyObject *err_closed(void)
{
	PyErr_SetString(PyExc_OSError, "handle is closed");
	return NULL;
}

static void fork_check(Conn *self)
{
	if (self->gen != fork_gen) {
		/* Calls in flight were in threads the fork did not copy. */
		self->gen = fork_gen;
		self->busy = 0;
		self->scratch_busy = 0;
		self->pickler_busy = 0;
	}
}

static void really_close(Conn *self)
{
	if (self->conn) {
		rp_conn_close(self->conn);
		self->conn = NULL;
		self->rd = self->wr = NULL;
	}
	self->closing = 0;
}

static int is_closed(Conn *self)
{
	return !self->conn || self->closing;
}

/* Enter a call: 0, or -1 with OSError("handle is closed"). */
static int enter(Conn *self)
{
	if (is_closed(self)) {
		err_closed();
		return -1;
	}
	fork_check(self);
	self->busy++;
	return 0;
}

static void leave(Conn *self)
{
	if (self->gen != fork_gen)
		return;
	if (self->busy > 0)
		self->busy--;
	if (self->closing && self->busy == 0)
		really_close(self);
}

/* Open, and able to read (reading) or write (!reading)? */
static int check_mode(Conn *self, int reading)
{
	if (is_closed(self)) {
		err_closed();
		return -1;
	}
	if (!(reading ? self->readable : self->writable)) {
		PyErr_SetString(PyExc_OSError, reading ? "connection is write-only"
							: "connection is read-only");
		return -1;
	}
	return 0;
}

/* Parse a timeout: None -> *forever = 1; a number of seconds -> deadline. */
static int parse_timeout(PyObject *t, int *forever, double *deadline)
{
	if (t == NULL || t == Py_None) {
		*forever = 1;
		*deadline = 0;
		return 0;
	}
	double s = PyFloat_AsDouble(t);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (isnan(s)) {
		PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
		return -1;
	}
	*forever = 0;
	*deadline = mono_now() + (s > 0 ? s : 0);
	return 0;
}

static int ms_left(int forever, double deadline)
{
	if (forever)
		return -1;
	double left = deadline - mono_now();
	if (left <= 0)
		return 0;
	double ms = ceil(left * 1000.0);
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Wait until a message or EOF is ready: 1, 0 on timeout, -1 error. */
static int wait_readable(Conn *self, int forever, double deadline)
{
	for (;;) {
		int ms = ms_left(forever, deadline);
		int r, err;
		Py_BEGIN_ALLOW_THREADS
		r = rp_poll(self->conn, ms);
		err = errno;
		Py_END_ALLOW_THREADS
		if (r > 0)
			return 1;
		if (r == 0) {
			if (!forever && mono_now() >= deadline)
				return 0;
			continue;
		}
		if (err == EINTR) {
			if (PyErr_CheckSignals() < 0)
				return -1;
			continue;
		}
		errno = err;
		PyErr_SetFromErrno(PyExc_OSError);
		return -1;
	}
}

/* A non-blocking end found no room: wait until the writer's descriptor
 * polls writable (or in error, which the next rp_send reports). */
static int wait_writable(Conn *self)
{
	int fd = rp_fileno(self->wr);
	if (fd < 0) {
		PyErr_SetFromErrno(PyExc_OSError);
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int r, err;
		Py_BEGIN_ALLOW_THREADS
		r = poll(&p, 1, -1);
		err = errno;
		Py_END_ALLOW_THREADS
		if (r >= 0)
			return 0;
		if (err == EINTR) {
			if (PyErr_CheckSignals() < 0)
				return -1;
			continue;
		}
		errno = err;
		PyErr_SetFromErrno(PyExc_OSError);
		return -1;
	}
}

/* How long a receiver on a non-blocking end (a Queue's) spins for data
 * before it sleeps in rp_poll, like rp_recv's own spin on a blocking end:
 * RINGPIPE_SPIN_NS, default 20 us. */
static unsigned long spin_ns = 20000;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * Spin (without the GIL) until bytes are queued: 1, or 0 if none came.
 * Adaptive: after a spin that ended without data, the next waits skip
 * spinning (1, 2, 4, ... up to 64 of them), so that a consumer that
 * mostly sleeps stops burning CPU; and it yields the CPU now and then, so
 * that on an oversubscribed machine a producer sharing our CPU can run.
 */
static int spin_readable(Conn *self, int forever, double deadline)
{
	int r = 0;
	if (!spin_ns || !self->rd)
		return 0;
	if (self->spin_skip > 0) {
		self->spin_skip--;
		return 0;
	}
	Py_BEGIN_ALLOW_THREADS
	double until = mono_now() + (double)spin_ns * 1e-9;
	if (!forever && deadline < until)
		until = deadline;
	for (unsigned i = 1;; i++) {
		if (rp_nread(self->rd) > 0) {
			r = 1;
			break;
		}
		if ((i & 31) == 0) {
			if (mono_now() >= until)
				break;
			if ((i & 255) == 0)
				sched_yield();
		}
		cpu_relax();
	}
	Py_END_ALLOW_THREADS
	if (r) {
		self->spin_fails = 0;
	} else {
		if (self->spin_fails < 6)
			self->spin_fails++;
		self->spin_skip = 1 << self->spin_fails;
	}
	return r;
}

#define RX_ERROR   (-1)   /* Python exception set */
#define RX_TOOBIG  (-2)   /* EMSGSIZE: the message is still queued */
#define RX_TIMEOUT (-3)

/* Receive one message into buf[0..cap).  Caller has entered. */
static Py_ssize_t recv_raw(Conn *self, void *buf, size_t cap, int forever,
			   double deadline)
{
	int spun = 0;
	for (;;) {
		ssize_t n;
		int err;
		Py_BEGIN_ALLOW_THREADS
		n = rp_recv(self->conn, buf, cap);
		err = errno;
		Py_END_ALLOW_THREADS
		if (n >= 0)
			return (Py_ssize_t)n;
		switch (err) {
		case EINTR:
			if (PyErr_CheckSignals() < 0)
				return RX_ERROR;
			continue;
		case EMSGSIZE:
			return RX_TOOBIG;
		case ENODATA:
			PyErr_SetNone(PyExc_EOFError);
			return RX_ERROR;
		case EAGAIN: {
			if (!spun++ && spin_readable(self, forever, deadline))
				continue;
			int r = wait_readable(self, forever, deadline);
			if (r < 0)
				return RX_ERROR;
			if (r == 0)
				return RX_TIMEOUT;
			continue;
		}
		default:
			errno = err;
			PyErr_SetFromErrno(PyExc_OSError);
			return RX_ERROR;
		}
	}
}

/*
 * Receive one message as bytes.  limit: largest accepted size (else
 * *toobig = 1 and NULL without an exception).  On timeout, NULL without an
 * exception and *toobig = 0.  Caller has entered.
 */
static PyObject *recv_message(Conn *self, size_t limit, int forever,
			      double deadline, int *toobig)
{
	size_t size;
	Py_ssize_t n;

	*toobig = 0;
	if (self->hint <= SCRATCH_SIZE && !self->scratch_busy) {
		if (!self->scratch && !(self->scratch = PyMem_RawMalloc(SCRATCH_SIZE)))
			return PyErr_NoMemory();
		size_t cap = limit < SCRATCH_SIZE ? limit : SCRATCH_SIZE;
		self->scratch_busy = 1;
		n = recv_raw(self, self->scratch, cap, forever, deadline);
		PyObject *r = NULL;
		if (n >= 0) {
			self->hint = (size_t)n;
			r = PyBytes_FromStringAndSize((char *)self->scratch, n);
		}
		self->scratch_busy = 0;
		if (n >= 0 || n == RX_ERROR || n == RX_TIMEOUT)
			return r;
		if (cap == limit) {
			*toobig = 1;
			return NULL;
		}
		size = 4 * (size_t)SCRATCH_SIZE;
	} else {
		size = self->hint > 256 ? self->hint : 256;
	}
	for (;;) {
		if (size > limit)
			size = limit;
		if (size > PY_SSIZE_T_MAX - 64)
			size = PY_SSIZE_T_MAX - 64;
		PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
		if (!b)
			return NULL;
		n = recv_raw(self, PyBytes_AS_STRING(b), size, forever, deadline);
		if (n >= 0) {
			self->hint = (size_t)n;
			if ((size_t)n != size && _PyBytes_Resize(&b, n) < 0)
				return NULL;
			return b;
		}
		Py_DECREF(b);
		if (n != RX_TOOBIG)
			return NULL;
		if (size >= limit || size >= PY_SSIZE_T_MAX - 64) {
			*toobig = 1;
			return NULL;
		}
		size = size > (SIZE_MAX / 4) ? SIZE_MAX : size * 4;
	}
}

/* Send buf[0..n).  Caller has entered. */
static int send_raw(Conn *self, const void *buf, size_t n)
{
	int again = 0;
	for (;;) {
		int r, err;
		Py_BEGIN_ALLOW_THREADS
		r = rp_send(self->conn, buf, n);
		err = errno;
		Py_END_ALLOW_THREADS
		if (r == 0)
			return 0;
		if (err == EINTR) {
			if (PyErr_CheckSignals() < 0)
				return -1;
			continue;
		}
		if (err == EAGAIN) {
			/* The writer's descriptor may poll writable while the ring
			 * still has no room for this message (a reader holds its
			 * lock): back off rather than spin. */
			if (again++ >= 2) {
				struct timespec ts = { 0, 1000000 };
				Py_BEGIN_ALLOW_THREADS
				nanosleep(&ts, NULL);
				Py_END_ALLOW_THREADS
				if (PyErr_CheckSignals() < 0)
					return -1;
			}
			if (wait_writable(self) < 0)
				return -1;
			continue;
		}
		errno = err;
		PyErr_SetFromErrno(PyExc_OSError);
		return -1;
	}
}

/* Pickle obj as multiprocessing's ForkingPickler.dumps does. */
static PyObject *new_pickler(PyObject **sink_out)
{
	PyObject *sink = PyType_GenericNew(&SinkType, NULL, NULL);
	if (!sink)
		return NULL;
	PyObject *p = PyObject_CallOneArg(Pickler_type, sink);
	if (!p || PyObject_SetAttr(p, str_dispatch_table, dispatch_chain) < 0) {
		Py_XDECREF(p);
		Py_DECREF(sink);
		return NULL;
	}
	*sink_out = sink;
	return p;
}

static PyObject *dumps(Conn *self, PyObject *obj)
{
	PyObject *r, *data;

	if (!self->pickler) {
		self->pickler = new_pickler(&self->sink);
		if (!self->pickler)
			return NULL;
		self->dump = PyObject_GetAttr(self->pickler, str_dump);
		self->clear_memo = PyObject_GetAttr(self->pickler, str_clear_memo);
		if (!self->dump || !self->clear_memo) {
			Py_CLEAR(self->pickler);
			Py_CLEAR(self->sink);
			Py_CLEAR(self->dump);
			Py_CLEAR(self->clear_memo);
			return NULL;
		}
	}
	if (self->pickler_busy) {
		/* Re-entered (a __reduce__ sending on this connection) or
		 * another thread is pickling: use a pickler of our own. */
		PyObject *sink, *p = new_pickler(&sink);
		if (!p)
			return NULL;
		r = PyObject_CallMethodOneArg(p, str_dump, obj);
		data = r ? sink_take((Sink *)sink) : NULL;
		Py_XDECREF(r);
		Py_DECREF(p);
		Py_DECREF(sink);
		return data;
	}
	self->pickler_busy = 1;
	r = PyObject_CallOneArg(self->dump, obj);
	data = r ? sink_take((Sink *)self->sink) : NULL;
	Py_XDECREF(r);
	if (!data)
		sink_clear((Sink *)self->sink);
	/* Drop the memo's references to the object now, not at the next send. */
	PyObject *exc_type, *exc_val, *exc_tb;
	PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
	PyObject *c = PyObject_CallNoArgs(self->clear_memo);
	if (!c)
		PyErr_Clear();
	Py_XDECREF(c);
	PyErr_Restore(exc_type, exc_val, exc_tb);
	self->pickler_busy = 0;
	return data;
}

/* ---- methods ---- */

PyDoc_STRVAR(send_bytes_doc,
"send_bytes(buf, offset=0, size=None)\n--\n\n"
"Send the bytes data from a bytes-like object as one message.\n\n"
"If offset is given, data is read from that position in buf; if size is\n"
"given, that many bytes are sent.  ValueError for a negative offset or\n"
"size, or one beyond the buffer.  The GIL is released while sending.");

static PyObject *conn_send_bytes(Conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "buf", "offset", "size", NULL };
	PyObject *bufobj, *sizeobj = Py_None;
	Py_ssize_t offset = 0, size;
	Py_buffer view;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|nO:send_bytes", kwlist,
					 &bufobj, &offset, &sizeobj))
		return NULL;
	if (check_mode(self, 0) < 0)
		return NULL;
	if (PyObject_GetBuffer(bufobj, &view, PyBUF_SIMPLE) < 0)
		return NULL;
	Py_ssize_t n = view.len;
	const char *msg = NULL;
	if (offset < 0)
		msg = "offset is negative";
	else if (n < offset)
		msg = "buffer length < offset";
	if (!msg) {
		if (sizeobj == Py_None) {
			size = n - offset;
		} else {
			size = PyNumber_AsSsize_t(sizeobj, PyExc_OverflowError);
			if (size == -1 && PyErr_Occurred()) {
				PyBuffer_Release(&view);
				return NULL;
			}
			if (size < 0)
				msg = "size is negative";
			else if (offset + size > n || offset + size < 0)
				msg = "buffer length < offset + size";
		}
	}
	if (msg) {
		PyBuffer_Release(&view);
		PyErr_SetString(PyExc_ValueError, msg);
		return NULL;
	}
	if (enter(self) < 0) {
		PyBuffer_Release(&view);
		return NULL;
	}
	int r = send_raw(self, (const char *)view.buf + offset, (size_t)size);
	leave(self);
	PyBuffer_Release(&view);
	if (r < 0)
		return NULL;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(send_doc,
"send(obj)\n--\n\n"
"Send a picklable object, pickled with multiprocessing's ForkingPickler\n"
"(so that registered reducers, e.g. for connections, apply).");

static PyObject *conn_send(Conn *self, PyObject *obj)
{
	if (check_mode(self, 0) < 0)
		return NULL;
	if (enter(self) < 0)
		return NULL;
	PyObject *data = dumps(self, obj);
	int r = -1;
	if (data) {
		r = send_raw(self, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
		Py_DECREF(data);
	}
	leave(self);
	if (r < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *bad_message_length(Conn *self)
{
	/* As multiprocessing does: the connection is no longer readable. */
	if (self->writable) {
		self->readable = 0;
	} else if (self->busy == 0) {
		really_close(self);
	} else {
		self->closing = 1;
	}
	PyErr_SetString(PyExc_OSError, "bad message length");
	return NULL;
}

PyDoc_STRVAR(recv_bytes_doc,
"recv_bytes(maxlength=None)\n--\n\n"
"Receive one message as a bytes object, blocking until one arrives.\n\n"
"EOFError once the stream has ended (every sender closed or died).  A\n"
"message longer than maxlength raises OSError('bad message length') and\n"
"the connection stops being readable, as in multiprocessing.");

static PyObject *conn_recv_bytes(Conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "maxlength", NULL };
	PyObject *maxobj = Py_None;
	size_t limit = SIZE_MAX;
	int toobig;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:recv_bytes", kwlist, &maxobj))
		return NULL;
	if (check_mode(self, 1) < 0)
		return NULL;
	if (maxobj != Py_None) {
		Py_ssize_t m = PyNumber_AsSsize_t(maxobj, PyExc_OverflowError);
		if (m == -1 && PyErr_Occurred())
			return NULL;
		if (m < 0) {
			PyErr_SetString(PyExc_ValueError, "negative maxlength");
			return NULL;
		}
		limit = (size_t)m;
	}
	if (enter(self) < 0)
		return NULL;
	PyObject *r = recv_message(self, limit, 1, 0, &toobig);
	leave(self);
	if (!r && toobig)
		return bad_message_length(self);
	return r;
}

PyDoc_STRVAR(recv_bytes_into_doc,
"recv_bytes_into(buf, offset=0)\n--\n\n"
"Receive one message into the writable buffer buf at byte offset offset,\n"
"and return its length.  If it does not fit, the message is consumed and\n"
"multiprocessing.BufferTooShort is raised with the whole message as\n"
"e.args[0].  A buffer that may not be written is a TypeError, and the\n"
"message stays queued.");

/* ValueError, as multiprocessing words it, if offset is outside a buffer
 * of len bytes. */
static int bad_offset(Py_ssize_t offset, Py_ssize_t len)
{
	if (offset >= 0 && offset <= len)
		return 0;
	PyErr_SetString(PyExc_ValueError,
			offset < 0 ? "negative offset" : "offset too large");
	return 1;
}

/*
 * recv_bytes_into() was given a buffer it may not write (the error is
 * set).  multiprocessing checks the offset first (ValueError), then
 * receives the message and fails to copy it in (TypeError): the same
 * errors here, but the message stays queued instead of being lost.
 */
static PyObject *read_only_buffer(PyObject *bufobj, Py_ssize_t offset)
{
	Py_buffer ro;
	if (!PyErr_ExceptionMatches(PyExc_BufferError))
		return NULL;            /* not a buffer at all: TypeError */
	PyErr_Clear();
	if (PyObject_GetBuffer(bufobj, &ro, PyBUF_FULL_RO) < 0)
		return NULL;
	Py_ssize_t len = ro.len;
	PyBuffer_Release(&ro);
	if (!bad_offset(offset, len))
		PyErr_Format(PyExc_TypeError,
			     "recv_bytes_into() argument must be read-write "
			     "bytes-like object, not %.200s", Py_TYPE(bufobj)->tp_name);
	return NULL;
}

static PyObject *conn_recv_bytes_into(Conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "buf", "offset", NULL };
	PyObject *bufobj;
	Py_ssize_t offset = 0;
	Py_buffer view;
	int toobig;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n:recv_bytes_into", kwlist,
					 &bufobj, &offset))
		return NULL;
	if (check_mode(self, 1) < 0)
		return NULL;
	if (PyObject_GetBuffer(bufobj, &view, PyBUF_WRITABLE) < 0)
		return read_only_buffer(bufobj, offset);
	if (bad_offset(offset, view.len)) {
		PyBuffer_Release(&view);
		return NULL;
	}
	if (enter(self) < 0) {
		PyBuffer_Release(&view);
		return NULL;
	}
	Py_ssize_t n = recv_raw(self, (char *)view.buf + offset,
				(size_t)(view.len - offset), 1, 0);
	PyObject *result = NULL;
	if (n >= 0) {
		self->hint = (size_t)n;
		result = PyLong_FromSsize_t(n);
	} else if (n == RX_TOOBIG) {
		/* Take the message anyway and hand it over in the exception. */
		PyObject *msg = recv_message(self, SIZE_MAX, 1, 0, &toobig);
		if (msg) {
			PyErr_SetObject(BufferTooShort, msg);
			Py_DECREF(msg);
		}
	}
	leave(self);
	PyBuffer_Release(&view);
	return result;
}

PyDoc_STRVAR(recv_doc,
"recv()\n--\n\n"
"Receive one object sent with send(), blocking until one arrives.\n"
"EOFError once the stream has ended.");

static PyObject *conn_recv(Conn *self, PyObject *unused)
{
	int toobig;
	(void)unused;
	if (check_mode(self, 1) < 0)
		return NULL;
	if (enter(self) < 0)
		return NULL;
	PyObject *b = recv_message(self, SIZE_MAX, 1, 0, &toobig);
	leave(self);
	if (!b)
		return NULL;
	PyObject *r = PyObject_CallOneArg(pickle_loads, b);
	Py_DECREF(b);
	return r;
}

PyDoc_STRVAR(poll_doc,
"poll(timeout=0.0)\n--\n\n"
"Return whether a message (or the end of the stream) is ready to be\n"
"received.  timeout: seconds to wait; None waits forever.");

static PyObject *conn_poll(Conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *t = NULL;
	int forever;
	double deadline;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:poll", kwlist, &t))
		return NULL;
	if (check_mode(self, 1) < 0)
		return NULL;
	if (!t) {
		forever = 0;
		deadline = 0;
	} else if (parse_timeout(t, &forever, &deadline) < 0) {
		return NULL;
	}
	if (enter(self) < 0)
		return NULL;
	int r;
	if (!t) {
		/* The common poll(): no clock, no GIL dance. */
		r = rp_poll(self->conn, 0);
		if (r < 0) {
			if (errno == EINTR)
				r = wait_readable(self, 0, 0);
			else
				PyErr_SetFromErrno(PyExc_OSError);
		}
	} else {
		r = wait_readable(self, forever, deadline);
	}
	leave(self);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

PyDoc_STRVAR(fileno_doc,
"fileno()\n--\n\n"
"A file descriptor owned by the connection, for select/poll/selectors and\n"
"multiprocessing.connection.wait(): it polls readable exactly when a\n"
"message or the end of the stream is ready.  Never read or write it.");

static PyObject *conn_fileno(Conn *self, PyObject *unused)
{
	(void)unused;
	if (is_closed(self))
		return err_closed();
	if (self->rd) {
		/* Make the descriptor exact now: drop stale doorbell tokens
		 * (left by a message another process took) and arm it. */
		int saved = errno;
		rp_poll(self->conn, 0);
		errno = saved;
	}
	int fd = rp_conn_fileno(self->conn);
	if (fd < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	return PyLong_FromLong(fd);
}

PyDoc_STRVAR(close_doc,
"close()\n--\n\n"
"Close the connection (both directions).  Further calls raise OSError;\n"
"closing twice is harmless.");

static PyObject *conn_close(Conn *self, PyObject *unused)
{
	(void)unused;
	if (!self->conn)
		Py_RETURN_NONE;
	fork_check(self);
	if (self->busy > 0)
		self->closing = 1;
	else
		really_close(self);
	Py_RETURN_NONE;
}

static PyObject *conn_export(Conn *self, PyObject *unused)
{
	char tok[RP_TOKEN_MAX];
	PyObject *r[2] = { Py_None, Py_None };
	rp_end *ends[2] = { self->rd, self->wr };
	(void)unused;

	if (is_closed(self))
		return err_closed();
	for (int i = 0; i < 2; i++) {
		if (!ends[i])
			continue;
		if (rp_export(ends[i], tok, sizeof(tok)) < 0)
			return PyErr_SetFromErrno(PyExc_OSError);
		r[i] = PyUnicode_FromString(tok);
		if (!r[i]) {
			if (i == 1 && r[0] != Py_None)
				Py_DECREF(r[0]);
			return NULL;
		}
	}
	PyObject *t = PyTuple_Pack(2, r[0], r[1]);
	for (int i = 0; i < 2; i++)
		if (r[i] != Py_None)
			Py_DECREF(r[i]);
	return t;
}

static PyObject *conn_set_nonblocking(Conn *self, PyObject *arg)
{
	int on = PyObject_IsTrue(arg);
	if (on < 0)
		return NULL;
	if (is_closed(self))
		return err_closed();
	if ((self->rd && rp_set_nonblock(self->rd, on) < 0) ||
	    (self->wr && rp_set_nonblock(self->wr, on) < 0))
		return PyErr_SetFromErrno(PyExc_OSError);
	Py_RETURN_NONE;
}

/* Queue helpers. */

static PyObject *conn_dumps(Conn *self, PyObject *obj)
{
	if (enter(self) < 0)
		return NULL;
	PyObject *r = dumps(self, obj);
	leave(self);
	return r;
}

/*
 * _put_obj(obj, limit): pickle obj and, if the pickle is at most limit
 * bytes, send it if it can start at once (on a non-blocking end).  Returns
 * None if sent, else the pickle, for the caller to send later.
 */
static PyObject *conn_put_obj(Conn *self, PyObject *args)
{
	PyObject *obj;
	Py_ssize_t limit;

	if (!PyArg_ParseTuple(args, "On:_put_obj", &obj, &limit))
		return NULL;
	if (check_mode(self, 0) < 0 || enter(self) < 0)
		return NULL;
	PyObject *data = dumps(self, obj);
	if (data && PyBytes_GET_SIZE(data) <= limit) {
		for (;;) {
			int r, err;
			Py_BEGIN_ALLOW_THREADS
			r = rp_send(self->conn, PyBytes_AS_STRING(data),
				    (size_t)PyBytes_GET_SIZE(data));
			err = errno;
			Py_END_ALLOW_THREADS
			if (r == 0) {
				Py_DECREF(data);
				data = Py_None;
				Py_INCREF(data);
				break;
			}
			if (err == EAGAIN)
				break;
			if (err == EINTR) {
				if (PyErr_CheckSignals() < 0) {
					Py_CLEAR(data);
					break;
				}
				continue;
			}
			errno = err;
			PyErr_SetFromErrno(PyExc_OSError);
			Py_CLEAR(data);
			break;
		}
	}
	leave(self);
	return data;
}

/* _recv_timeout(timeout): bytes, or None when timeout (None: forever)
 * passes first. */
static PyObject *conn_recv_timeout(Conn *self, PyObject *t)
{
	int forever, toobig;
	double deadline;

	if (check_mode(self, 1) < 0)
		return NULL;
	if (parse_timeout(t, &forever, &deadline) < 0)
		return NULL;
	if (enter(self) < 0)
		return NULL;
	PyObject *r = recv_message(self, SIZE_MAX, forever, deadline, &toobig);
	leave(self);
	if (!r && !PyErr_Occurred())
		Py_RETURN_NONE;
	return r;
}

/* ---- construction ---- */

static Conn *conn_alloc(PyTypeObject *cls, rp_conn *c, rp_end *rd, rp_end *wr,
			int readable, int writable)
{
	Conn *self = (Conn *)cls->tp_alloc(cls, 0);
	if (!self)
		return NULL;
	self->conn = c;
	self->rd = rd;
	self->wr = wr;
	self->readable = (char)readable;
	self->writable = (char)writable;
	self->gen = fork_gen;
	return self;
}

static PyObject *conn_pipe(PyObject *cls, PyObject *args)
{
	int duplex;
	Py_ssize_t capacity;
	rp_end *a[2] = { NULL, NULL }, *b[2] = { NULL, NULL };
	rp_conn *c0 = NULL, *c1 = NULL;
	Conn *o0 = NULL, *o1 = NULL;

	if (!PyArg_ParseTuple(args, "pn:_pipe", &duplex, &capacity))
		return NULL;
	if (capacity < 0) {
		PyErr_SetString(PyExc_ValueError, "capacity must not be negative");
		return NULL;
	}
	if ((uint64_t)capacity > RP_MAX_CAPACITY) {
		PyErr_Format(PyExc_ValueError, "capacity %zd is over the limit of "
			     "%llu bytes (4 GiB)", capacity,
			     (unsigned long long)RP_MAX_CAPACITY);
		return NULL;
	}
	if (rp_pipe2(a, O_CLOEXEC, (size_t)capacity) < 0)
		goto fail;
	if (duplex && rp_pipe2(b, O_CLOEXEC, (size_t)capacity) < 0)
		goto fail;
	/* As multiprocessing.Pipe: (reader, writer) when one-way; when
	 * duplex, a carries 1 -> 0 and b carries 0 -> 1. */
	rp_end *r0 = a[0], *w0 = b[1], *r1 = b[0], *w1 = a[1];
	if (!(c0 = rp_conn_from_ends(r0, w0)))
		goto fail;
	a[0] = b[1] = NULL;
	if (!(c1 = rp_conn_from_ends(r1, w1)))
		goto fail;
	a[1] = b[0] = NULL;
	o0 = conn_alloc((PyTypeObject *)cls, c0, r0, w0, 1, duplex);
	if (!o0) {
		rp_conn_close(c0);
		rp_conn_close(c1);
		return NULL;
	}
	o1 = conn_alloc((PyTypeObject *)cls, c1, r1, w1, duplex, 1);
	if (!o1) {
		Py_DECREF(o0);
		rp_conn_close(c1);
		return NULL;
	}
	PyObject *t = PyTuple_Pack(2, (PyObject *)o0, (PyObject *)o1);
	Py_DECREF(o0);
	Py_DECREF(o1);
	return t;
fail:
	{
		int err = errno;
		if (c0)
			rp_conn_close(c0);
		for (int i = 0; i < 2; i++) {
			if (a[i])
				rp_close(a[i]);
			if (b[i])
				rp_close(b[i]);
		}
		errno = err;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
}

/* _import(rtoken, wtoken, readable, writable): rebuild a connection from
 * rp_export tokens naming descriptors this process now owns. */
static PyObject *conn_import(PyObject *cls, PyObject *args)
{
	const char *rt = NULL, *wt = NULL;
	int readable, writable;
	rp_end *rd = NULL, *wr = NULL;

	if (!PyArg_ParseTuple(args, "zzpp:_import", &rt, &wt, &readable, &writable))
		return NULL;
	if (!rt && !wt) {
		PyErr_SetString(PyExc_ValueError, "no end to import");
		return NULL;
	}
	if ((rt && !(rd = rp_import(rt))) || (wt && !(wr = rp_import(wt)))) {
		int err = errno;
		if (rd)
			rp_close(rd);
		errno = err;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	rp_conn *c = rp_conn_from_ends(rd, wr);
	if (!c) {
		int err = errno;
		if (rd)
			rp_close(rd);
		if (wr)
			rp_close(wr);
		errno = err;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	Conn *o = conn_alloc((PyTypeObject *)cls, c, rd, wr, readable && rd, writable && wr);
	if (!o)
		rp_conn_close(c);
	return (PyObject *)o;
}

static PyObject *conn_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	(void)type; (void)args; (void)kw;
	PyErr_SetString(PyExc_TypeError,
			"ringpipe connections are made by ringpipe.Pipe()");
	return NULL;
}

static void conn_dealloc(Conn *self)
{
	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	/* Nothing can be in flight: every call holds a reference. */
	really_close(self);
	if (self->scratch)
		PyMem_RawFree(self->scratch);
	Py_CLEAR(self->dump);
	Py_CLEAR(self->clear_memo);
	Py_CLEAR(self->pickler);
	Py_CLEAR(self->sink);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *get_closed(Conn *self, void *unused)
{
	(void)unused;
	return PyBool_FromLong(is_closed(self));
}

static PyObject *get_readable(Conn *self, void *unused)
{
	(void)unused;
	return PyBool_FromLong(self->readable);
}

static PyObject *get_writable(Conn *self, void *unused)
{
	(void)unused;
	return PyBool_FromLong(self->writable);
}

static PyObject *get_capacity(Conn *self, void *unused)
{
	(void)unused;
	if (is_closed(self))
		return err_closed();
	size_t c = rp_capacity(self->wr ? self->wr : self->rd);
	return PyLong_FromSize_t(c);
}

static PyGetSetDef conn_getset[] = {
	{ "closed", (getter)get_closed, NULL, "True if the connection is closed", NULL },
	{ "readable", (getter)get_readable, NULL, "True if the connection is readable", NULL },
	{ "writable", (getter)get_writable, NULL, "True if the connection is writable", NULL },
	{ "_capacity", (getter)get_capacity, NULL, "ring capacity in bytes", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

#define KWFUNC(f) ((PyCFunction)(void (*)(void))(f))

static PyMethodDef conn_methods[] = {
	{ "send_bytes", KWFUNC(conn_send_bytes), METH_VARARGS | METH_KEYWORDS, send_bytes_doc },
	{ "send", (PyCFunction)conn_send, METH_O, send_doc },
	{ "recv_bytes", KWFUNC(conn_recv_bytes), METH_VARARGS | METH_KEYWORDS, recv_bytes_doc },
	{ "recv_bytes_into", KWFUNC(conn_recv_bytes_into), METH_VARARGS | METH_KEYWORDS,
	  recv_bytes_into_doc },
	{ "recv", (PyCFunction)conn_recv, METH_NOARGS, recv_doc },
	{ "poll", KWFUNC(conn_poll), METH_VARARGS | METH_KEYWORDS, poll_doc },
	{ "fileno", (PyCFunction)conn_fileno, METH_NOARGS, fileno_doc },
	{ "close", (PyCFunction)conn_close, METH_NOARGS, close_doc },
	{ "_export", (PyCFunction)conn_export, METH_NOARGS,
	  "(reader token or None, writer token or None), from rp_export" },
	{ "_set_nonblocking", (PyCFunction)conn_set_nonblocking, METH_O,
	  "rp_set_nonblock on both ends (shared with every copy of them)" },
	{ "_dumps", (PyCFunction)conn_dumps, METH_O, "pickle as ForkingPickler.dumps" },
	{ "_put_obj", (PyCFunction)conn_put_obj, METH_VARARGS,
	  "_put_obj(obj, limit): pickle; send if small and room now; None if sent, "
	  "else the pickle" },
	{ "_recv_timeout", (PyCFunction)conn_recv_timeout, METH_O,
	  "_recv_timeout(timeout): one message as bytes, or None on timeout" },
	{ "_pipe", (PyCFunction)conn_pipe, METH_VARARGS | METH_CLASS,
	  "_pipe(duplex, capacity) -> (conn0, conn1)" },
	{ "_import", (PyCFunction)conn_import, METH_VARARGS | METH_CLASS,
	  "_import(rtoken, wtoken, readable, writable) -> connection" },
	{ NULL, NULL, 0, NULL }
};

PyDoc_STRVAR(conn_doc,
"Base of ringpipe.Connection: one end of a ringpipe message pipe.");

static PyTypeObject ConnType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "ringpipe._ringpipe._Connection",
	.tp_basicsize = sizeof(Conn),
	.tp_dealloc = (destructor)conn_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = conn_doc,
	.tp_weaklistoffset = offsetof(Conn, weakreflist),
	.tp_methods = conn_methods,
	.tp_getset = conn_getset,
	.tp_new = conn_new,
};

/* ------------------------------------------------------------------ */

static PyObject *import_attr(const char *module, const char *name)
{
	PyObject *m = PyImport_ImportModule(module);
	if (!m)
		return NULL;
	PyObject *a = PyObject_GetAttrString(m, name);
	Py_DECREF(m);
	return a;
}

static int module_exec(PyObject *m)
{
	if (PyType_Ready(&SinkType) < 0 || PyType_Ready(&ChainType) < 0 ||
	    PyType_Ready(&ConnType) < 0)
		return -1;
	if (!(BufferTooShort = import_attr("multiprocessing", "BufferTooShort")) ||
	    !(pickle_loads = import_attr("pickle", "loads")) ||
	    !(Pickler_type = import_attr("pickle", "Pickler")))
		return -1;
	PyObject *fp = import_attr("multiprocessing.reduction", "ForkingPickler");
	if (!fp)
		return -1;
	Chain *ch = PyObject_New(Chain, &ChainType);
	if (!ch) {
		Py_DECREF(fp);
		return -1;
	}
	ch->first = PyObject_GetAttrString(fp, "_extra_reducers");
	ch->second = PyObject_GetAttrString(fp, "_copyreg_dispatch_table");
	Py_DECREF(fp);
	dispatch_chain = (PyObject *)ch;
	if (!ch->first || !ch->second)
		return -1;
	if (!(str_dump = PyUnicode_InternFromString("dump")) ||
	    !(str_clear_memo = PyUnicode_InternFromString("clear_memo")) ||
	    !(str_dispatch_table = PyUnicode_InternFromString("dispatch_table")))
		return -1;
	Py_INCREF(&ConnType);
	if (PyModule_AddObject(m, "_Connection", (PyObject *)&ConnType) < 0) {
		Py_DECREF(&ConnType);
		return -1;
	}
	Py_INCREF(dispatch_chain);
	if (PyModule_AddObject(m, "_dispatch_chain", dispatch_chain) < 0) {
		Py_DECREF(dispatch_chain);
		return -1;
	}
	if (PyModule_AddIntConstant(m, "PIPE_BUF", RP_PIPE_BUF) < 0 ||
	    PyModule_AddIntConstant(m, "DEFAULT_CAPACITY", RP_DEFAULT_CAPACITY) < 0 ||
	    PyModule_AddIntConstant(m, "MIN_CAPACITY", RP_MIN_CAPACITY) < 0 ||
	    PyModule_AddIntConstant(m, "TOKEN_MAX", RP_TOKEN_MAX) < 0 ||
	    PyModule_AddIntConstant(m, "VERSION_MAJOR", RP_VERSION_MAJOR) < 0 ||
	    PyModule_AddIntConstant(m, "VERSION_MINOR", RP_VERSION_MINOR) < 0)
		return -1;
	const char *sp = getenv("RINGPIPE_SPIN_NS");
	if (sp && *sp) {
		char *end;
		unsigned long v = strtoul(sp, &end, 10);
		if (!*end && v <= 1000000000UL)
			spin_ns = v;
	}
	static int atfork_done;
	if (!atfork_done) {
		pthread_atfork(NULL, NULL, atfork_child);
		atfork_done = 1;
	}
	return 0;
}

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT,
	.m_name = "ringpipe._ringpipe",
	.m_doc = "libringpipe message connections for CPython (see ringpipe).",
	.m_size = -1,
};

PyMODINIT_FUNC PyInit__ringpipe(void);

PyMODINIT_FUNC PyInit__ringpipe(void)
{
	PyObject *m = PyModule_Create(&moddef);
	if (!m)
		return NULL;
	if (module_exec(m) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
