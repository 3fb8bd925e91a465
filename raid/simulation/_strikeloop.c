/* The simulator's hot loop in C: the same integers, floats and random draws as the Python
 * lean path in engine.py (``RaidSimulation._play_until``), about ten times faster.
 *
 * The loop owns the event heap, every player's rested and resting characters, their random
 * streams and session ends, the per-player totals and the current scoring (contribution table,
 * tag flags, multipliers) and plans the players' sessions. It calls back into Python only for
 * rare events: a sample of the time series, a breakthrough or retaliation draw (which may
 * change the scoring: Python then calls ``set_scoring``), a multiplier not met yet, and the
 * trace that tests ask for.
 *
 * Exactness: contributions, scores, damage and analysis are signed 128-bit integers; every
 * multiplication and addition is checked, a score whose product would overflow is computed with
 * Python ints instead, and a value that cannot be held at all raises OverflowError (never a
 * wrong number). Floats are computed in the same order as the Python expressions (build with
 * -ffp-contract=off so no fused multiply-add changes a rounding).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef __int128 i128;

#define LCG_MUL 6364136223846793005ULL
#define LCG_ADD 1442695040888963407ULL
#define UNIT (1.0 / 9007199254740992.0)
#define MAX_TEAM 64
#define MULT_SIDE (MAX_TEAM + 1)
#define GREEDY 0
#define RANDOM 1
#define FIXED 2

typedef struct {
    double t;
    Py_ssize_t p;
} Event;

/* Team multipliers by (weak members, resisted members), filled as teams meet them. */
typedef struct {
    uint8_t known[MULT_SIDE * MULT_SIDE];
    i128 num[MULT_SIDE * MULT_SIDE];
    i128 den[MULT_SIDE * MULT_SIDE];
} MultCache;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;          /* players */
    Py_ssize_t n_chars;    /* characters of all players */
    Py_ssize_t n_dominant; /* dominant stats per character */
    Event *heap;
    Py_ssize_t heap_len;
    Py_ssize_t *first;     /* per player: its first character (and its slot in the rings) */
    int32_t *size;         /* per player: roster size */
    int32_t *avail;        /* rested characters, per player at first[p], avail_len[p] of them */
    int32_t *avail_len;
    int has_rest;
    double rest;
    int32_t *rest_chars;   /* resting characters, a ring per player, oldest first */
    int32_t *rc_head;
    double *re_time;       /* resting teams (rested at, how many), a ring per player */
    int32_t *re_count;
    int32_t *re_head;
    int32_t *re_len;
    int64_t *sorted_by;    /* contribution table each player's rested list is sorted by */
    uint8_t *policy;
    uint8_t *analyst;
    uint64_t *stream;
    double *session_end;
    uint32_t *masks;       /* per character: its tags as bits */
    uint32_t max_mask;     /* the highest of them (flags must cover it) */
    int64_t *dominant;     /* per character: its dominant stat values */
    i128 *damage;
    i128 *analysis;
    int64_t *strikes;
    int64_t *analyze_counts;
    i128 **tables;         /* contribution tables, by key index */
    Py_ssize_t n_tables;
    double react_lo, react_span;
    /* play pattern (engine._next_session): sessions per day, active hours, session minutes */
    long sessions_lo, sessions_hi;
    double active_first, active_last, minutes_lo, minutes_hi;
    double *utc_offset;    /* per player, hours */
    int64_t *day;          /* per player: the next local day to plan */
    double *pend_start;    /* per player: planned sessions, sessions_hi slots, latest first */
    double *pend_stop;
    int32_t *pend_len;
    /* the current scoring */
    int64_t key;
    i128 *table;
    int32_t *flags;
    Py_ssize_t n_flags;
    i128 scale, base_den, fight_num, fight_den, ana_num, ana_den;
    Py_ssize_t cap;
    double cooldown;
    PyObject *multiplier; /* counts -> (num, den), cached in mult */
    MultCache *mult;      /* the current multipliers' cache */
    MultCache **mults;    /* a cache per set of multipliers, by index */
    Py_ssize_t n_mults;
} Loop;

/* --- 128-bit integers <-> Python ints ----------------------------------------------------- */

static int to_i128(PyObject *o, i128 *out) {
    int overflow = 0;
    long long small = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (small == -1 && PyErr_Occurred()) return -1;
    if (!overflow) {
        *out = small;
        return 0;
    }
    PyObject *sixty_four = PyLong_FromLong(64);
    PyObject *mask = PyLong_FromUnsignedLongLong(UINT64_MAX);
    PyObject *hi = sixty_four ? PyNumber_Rshift(o, sixty_four) : NULL;
    PyObject *lo = mask ? PyNumber_And(o, mask) : NULL;
    int rc = -1;
    if (hi && lo) {
        long long h = PyLong_AsLongLongAndOverflow(hi, &overflow);
        unsigned long long l = PyLong_AsUnsignedLongLong(lo);
        if (!PyErr_Occurred()) {
            if (overflow || h > (1LL << 60) || h < -(1LL << 60)) {
                PyErr_SetString(PyExc_OverflowError,
                                "a value beyond 2^124 for the compiled simulator "
                                "(use --engine python)");
            } else {
                *out = ((i128)h << 64) | (i128)l;
                rc = 0;
            }
        }
    }
    Py_XDECREF(sixty_four);
    Py_XDECREF(mask);
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    return rc;
}

static PyObject *from_i128(i128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return PyLong_FromLongLong((long long)v);
    PyObject *hi = PyLong_FromLongLong((long long)(v >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)(v & UINT64_MAX));
    PyObject *sixty_four = PyLong_FromLong(64);
    PyObject *shifted = (hi && sixty_four) ? PyNumber_Lshift(hi, sixty_four) : NULL;
    PyObject *out = (shifted && lo) ? PyNumber_Add(shifted, lo) : NULL;
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(sixty_four);
    Py_XDECREF(shifted);
    return out;
}

static i128 floordiv(i128 a, i128 b) {
    i128 q = a / b;
    i128 r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) q -= 1;
    return q;
}

/* a * b * c // (d * e), exactly: 128-bit when nothing overflows, else Python ints. */
static int muldiv(i128 a, i128 b, i128 c, i128 d, i128 e, i128 *out) {
    i128 ab, abc, de;
    if (!__builtin_mul_overflow(a, b, &ab) && !__builtin_mul_overflow(ab, c, &abc) &&
        !__builtin_mul_overflow(d, e, &de)) {
        *out = floordiv(abc, de);
        return 0;
    }
    PyObject *v[5] = {from_i128(a), from_i128(b), from_i128(c), from_i128(d), from_i128(e)};
    PyObject *num1 = NULL, *num = NULL, *den = NULL, *q = NULL;
    int rc = -1;
    if (v[0] && v[1] && v[2] && v[3] && v[4]) {
        num1 = PyNumber_Multiply(v[0], v[1]);
        num = num1 ? PyNumber_Multiply(num1, v[2]) : NULL;
        den = PyNumber_Multiply(v[3], v[4]);
        q = (num && den) ? PyNumber_FloorDivide(num, den) : NULL;
        if (q) rc = to_i128(q, out);
    }
    for (int i = 0; i < 5; i++) Py_XDECREF(v[i]);
    Py_XDECREF(num1);
    Py_XDECREF(num);
    Py_XDECREF(den);
    Py_XDECREF(q);
    return rc;
}

static int overflowed(void) {
    PyErr_SetString(PyExc_OverflowError,
                    "a total beyond 2^127 in the compiled simulator (use --engine python)");
    return -1;
}

/* --- the event heap: (time, player), smallest first, ties by player ---------------------- */

static inline int before(const Event *a, const Event *b) {
    return a->t < b->t || (a->t == b->t && a->p < b->p);
}

static void heap_push(Loop *s, double t, Py_ssize_t p) {
    Event *h = s->heap;
    Py_ssize_t i = s->heap_len++;
    Event e = {t, p};
    while (i > 0) {
        Py_ssize_t up = (i - 1) >> 1;
        if (!before(&e, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = e;
}

static Event heap_pop(Loop *s) {
    Event *h = s->heap;
    Event top = h[0];
    Event last = h[--s->heap_len];
    Py_ssize_t n = s->heap_len, i = 0;
    if (n == 0) return top;
    for (;;) {
        Py_ssize_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && before(&h[child + 1], &h[child])) child++;
        if (!before(&h[child], &last)) break;
        h[i] = h[child];
        i = child;
    }
    h[i] = last;
    return top;
}

/* --- sessions ----------------------------------------------------------------------------- */

static inline double draw(Loop *s, Py_ssize_t p) {
    uint64_t z = s->stream[p] = s->stream[p] * LCG_MUL + LCG_ADD;
    return (double)(z >> 11) * UNIT;
}

/* engine._next_session: the player's next session, planned day by day. */
static void next_session(Loop *s, Py_ssize_t p, double *start, double *stop) {
    Py_ssize_t slot = p * s->sessions_hi;
    double *starts = s->pend_start + slot, *stops = s->pend_stop + slot;
    while (s->pend_len[p] == 0) {
        int64_t day = s->day[p]++;
        double midnight = (double)day * 86400.0 - s->utc_offset[p] * 3600.0;
        long lo = s->sessions_lo, hi = s->sessions_hi;
        long count = lo + (long)(draw(s, p) * (double)(hi - lo + 1));
        double first = s->active_first, last = s->active_last;
        double m_lo = s->minutes_lo, m_hi = s->minutes_hi;
        for (long i = 0; i < count; i++) {
            double begin = midnight + (first + draw(s, p) * (last - first)) * 3600.0;
            double length = (m_lo + draw(s, p) * (m_hi - m_lo)) * 60.0;
            /* insert keeping (start, stop) in descending order: the last is the earliest */
            int32_t j = s->pend_len[p]++;
            double end = begin + length;
            while (j > 0 &&
                   (starts[j - 1] < begin || (starts[j - 1] == begin && stops[j - 1] < end))) {
                starts[j] = starts[j - 1];
                stops[j] = stops[j - 1];
                j--;
            }
            starts[j] = begin;
            stops[j] = end;
        }
    }
    int32_t last = --s->pend_len[p];
    *start = starts[last];
    *stop = stops[last];
}

/* The first moment from ``earliest`` on at which player p plays (engine._in_session). */
static double in_session(Loop *s, Py_ssize_t p, double earliest) {
    while (earliest >= s->session_end[p]) {
        double start, stop;
        next_session(s, p, &start, &stop);
        s->session_end[p] = stop;
        if (start > earliest) earliest = start;
    }
    return earliest;
}

/* --- the type ----------------------------------------------------------------------------- */

/* The callbacks are bound methods of the RaidSimulation that holds this loop: a cycle the
 * garbage collector must see through. */
static int Loop_traverse(Loop *s, visitproc visit, void *arg) {
    Py_VISIT(s->multiplier);
    return 0;
}

static int Loop_clear(Loop *s) {
    Py_CLEAR(s->multiplier);
    return 0;
}

static void Loop_dealloc(Loop *s) {
    PyObject_GC_UnTrack(s);
    PyMem_Free(s->heap);
    PyMem_Free(s->first);
    PyMem_Free(s->size);
    PyMem_Free(s->avail);
    PyMem_Free(s->avail_len);
    PyMem_Free(s->rest_chars);
    PyMem_Free(s->rc_head);
    PyMem_Free(s->re_time);
    PyMem_Free(s->re_count);
    PyMem_Free(s->re_head);
    PyMem_Free(s->re_len);
    PyMem_Free(s->sorted_by);
    PyMem_Free(s->policy);
    PyMem_Free(s->analyst);
    PyMem_Free(s->stream);
    PyMem_Free(s->session_end);
    PyMem_Free(s->utc_offset);
    PyMem_Free(s->day);
    PyMem_Free(s->pend_start);
    PyMem_Free(s->pend_stop);
    PyMem_Free(s->pend_len);
    PyMem_Free(s->masks);
    PyMem_Free(s->dominant);
    PyMem_Free(s->damage);
    PyMem_Free(s->analysis);
    PyMem_Free(s->strikes);
    PyMem_Free(s->analyze_counts);
    for (Py_ssize_t i = 0; i < s->n_tables; i++) PyMem_Free(s->tables[i]);
    PyMem_Free(s->tables);
    PyMem_Free(s->flags);
    for (Py_ssize_t i = 0; i < s->n_mults; i++) PyMem_Free(s->mults[i]);
    PyMem_Free(s->mults);
    Loop_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

#define ALLOC(field, count)                                                  \
    do {                                                                     \
        s->field = PyMem_Calloc((size_t)((count) > 0 ? (count) : 1),         \
                                sizeof(*s->field));                          \
        if (!s->field) {                                                     \
            PyErr_NoMemory();                                                \
            return -1;                                                       \
        }                                                                    \
    } while (0)

static int seq_length(PyObject *list, Py_ssize_t expected, const char *name) {
    if (!PyList_Check(list) || PyList_GET_SIZE(list) != expected) {
        PyErr_Format(PyExc_ValueError, "%s: a list of %zd items expected", name, expected);
        return -1;
    }
    return 0;
}

/* Loop(heap, sizes, masks, dominant, n_dominant, policy, stream, analyst, session_end,
 *      rest, react_lo, react_span, sessions, utc_offset, day, pending) -- every list per
 * player except masks and dominant (per character; dominant flat, n_dominant values per
 * character); rest is None when characters never rest back; sessions is (sessions per day
 * lo, hi, active hours first, last, session minutes lo, hi); pending: each player's planned
 * (start, stop) sessions, latest first, as engine._next_session keeps them. */
static int Loop_init(Loop *s, PyObject *args, PyObject *kwds) {
    PyObject *heap, *sizes, *masks, *dominant, *policy, *stream, *analyst, *session_end, *rest;
    PyObject *utc_offset, *day, *pending;
    Py_ssize_t n_dominant;
    static char *kwlist[] = {"heap", "sizes", "masks", "dominant", "n_dominant", "policy",
                             "stream", "analyst", "session_end", "rest", "react_lo",
                             "react_span", "sessions", "utc_offset", "day", "pending", NULL};
    if (s->first) {
        PyErr_SetString(PyExc_RuntimeError, "Loop is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!nO!O!O!O!Odd(lldddd)O!O!O!", kwlist, &PyList_Type,
                                     &heap, &PyList_Type, &sizes, &PyList_Type, &masks,
                                     &PyList_Type, &dominant, &n_dominant, &PyList_Type, &policy,
                                     &PyList_Type, &stream, &PyList_Type, &analyst, &PyList_Type,
                                     &session_end, &rest, &s->react_lo, &s->react_span,
                                     &s->sessions_lo, &s->sessions_hi, &s->active_first,
                                     &s->active_last, &s->minutes_lo, &s->minutes_hi,
                                     &PyList_Type, &utc_offset, &PyList_Type, &day,
                                     &PyList_Type, &pending))
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(sizes);
    s->n = n;
    if (seq_length(policy, n, "policy") || seq_length(stream, n, "stream") ||
        seq_length(analyst, n, "analyst") || seq_length(session_end, n, "session_end") ||
        seq_length(utc_offset, n, "utc_offset") || seq_length(day, n, "day") ||
        seq_length(pending, n, "pending"))
        return -1;
    if (s->sessions_lo < 1 || s->sessions_hi < s->sessions_lo || s->sessions_hi > 1000) {
        PyErr_SetString(PyExc_ValueError, "sessions: 1 <= lo <= hi <= 1000 per day");
        return -1;
    }
    if (PyList_GET_SIZE(heap) > n) {
        PyErr_SetString(PyExc_ValueError, "heap: at most one event per player");
        return -1;
    }
    s->has_rest = rest != Py_None;
    if (s->has_rest) {
        s->rest = PyFloat_AsDouble(rest);
        if (PyErr_Occurred()) return -1;
    }
    ALLOC(first, n);
    ALLOC(size, n);
    Py_ssize_t total = 0;
    for (Py_ssize_t p = 0; p < n; p++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(sizes, p));
        if (v == -1 && PyErr_Occurred()) return -1;
        if (v < 1 || v > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "sizes: every roster has 1 character or more");
            return -1;
        }
        s->first[p] = total;
        s->size[p] = (int32_t)v;
        total += v;
    }
    s->n_chars = total;
    s->n_dominant = n_dominant;
    if (seq_length(masks, total, "masks") || seq_length(dominant, total * n_dominant, "dominant"))
        return -1;
    ALLOC(heap, n);
    ALLOC(avail, total);
    ALLOC(avail_len, n);
    ALLOC(rc_head, n);
    ALLOC(re_head, n);
    ALLOC(re_len, n);
    if (s->has_rest) {
        ALLOC(rest_chars, total);
        ALLOC(re_time, total);
        ALLOC(re_count, total);
    }
    ALLOC(sorted_by, n);
    ALLOC(policy, n);
    ALLOC(analyst, n);
    ALLOC(stream, n);
    ALLOC(session_end, n);
    ALLOC(utc_offset, n);
    ALLOC(day, n);
    ALLOC(pend_start, n * s->sessions_hi);
    ALLOC(pend_stop, n * s->sessions_hi);
    ALLOC(pend_len, n);
    ALLOC(masks, total);
    ALLOC(dominant, total * n_dominant);
    ALLOC(damage, n);
    ALLOC(analysis, n);
    ALLOC(strikes, n);
    ALLOC(analyze_counts, n);
    for (Py_ssize_t p = 0; p < n; p++) {
        s->avail_len[p] = s->size[p];
        for (int32_t i = 0; i < s->size[p]; i++)
            s->avail[s->first[p] + i] = (int32_t)(s->first[p] + i);
        s->sorted_by[p] = -1;
        long pol = PyLong_AsLong(PyList_GET_ITEM(policy, p));
        if (pol < 0 || pol > 2) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "policy: 0, 1 or 2");
            return -1;
        }
        s->policy[p] = (uint8_t)pol;
        int a = PyObject_IsTrue(PyList_GET_ITEM(analyst, p));
        if (a < 0) return -1;
        s->analyst[p] = (uint8_t)a;
        s->stream[p] = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(stream, p));
        s->session_end[p] = PyFloat_AsDouble(PyList_GET_ITEM(session_end, p));
        s->utc_offset[p] = PyFloat_AsDouble(PyList_GET_ITEM(utc_offset, p));
        s->day[p] = PyLong_AsLongLong(PyList_GET_ITEM(day, p));
        if (PyErr_Occurred()) return -1;
        PyObject *planned = PyList_GET_ITEM(pending, p);
        if (!PyList_Check(planned) || PyList_GET_SIZE(planned) > s->sessions_hi) {
            PyErr_SetString(PyExc_ValueError, "pending: a list of at most hi sessions each");
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(planned); i++) {
            Py_ssize_t slot = p * s->sessions_hi + i;
            if (!PyArg_ParseTuple(PyList_GET_ITEM(planned, i), "dd", &s->pend_start[slot],
                                  &s->pend_stop[slot]))
                return -1;
        }
        s->pend_len[p] = (int32_t)PyList_GET_SIZE(planned);
    }
    for (Py_ssize_t c = 0; c < total; c++) {
        unsigned long m = PyLong_AsUnsignedLong(PyList_GET_ITEM(masks, c));
        if (PyErr_Occurred()) return -1;
        s->masks[c] = (uint32_t)m;
        if (s->masks[c] > s->max_mask) s->max_mask = s->masks[c];
    }
    for (Py_ssize_t i = 0; i < total * n_dominant; i++) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(PyList_GET_ITEM(dominant, i), &overflow);
        if (overflow) {
            PyErr_SetString(PyExc_OverflowError,
                            "a stat beyond 2^63 for the compiled simulator (use --engine python)");
            return -1;
        }
        if (v == -1 && PyErr_Occurred()) return -1;
        s->dominant[i] = v;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(heap); i++) {
        double t;
        Py_ssize_t p;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(heap, i), "dn", &t, &p)) return -1;
        if (p < 0 || p >= n) {
            PyErr_SetString(PyExc_ValueError, "heap: a player out of range");
            return -1;
        }
        heap_push(s, t, p);
    }
    return 0;
}

/* add_table(nums, suppressions) -> key index: every character's contribution, as
 * engine._contributions computes it; suppressions are (tag bit, with tag, without). */
static PyObject *Loop_add_table(Loop *s, PyObject *args) {
    PyObject *nums, *suppressions;
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &nums, &PyTuple_Type, &suppressions))
        return NULL;
    Py_ssize_t nd = s->n_dominant;
    if (PyTuple_GET_SIZE(nums) != nd) {
        PyErr_SetString(PyExc_ValueError, "nums: one per dominant stat");
        return NULL;
    }
    i128 w[MAX_TEAM];
    if (nd > MAX_TEAM) {
        PyErr_SetString(PyExc_ValueError, "too many dominant stats");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nd; i++)
        if (to_i128(PyTuple_GET_ITEM(nums, i), &w[i])) return NULL;
    i128 *table = PyMem_Calloc((size_t)(s->n_chars > 0 ? s->n_chars : 1), sizeof(i128));
    if (!table) return PyErr_NoMemory();
    for (Py_ssize_t c = 0; c < s->n_chars; c++) {
        i128 sum = 0, term;
        for (Py_ssize_t i = 0; i < nd; i++) {
            if (__builtin_mul_overflow((i128)s->dominant[c * nd + i], w[i], &term) ||
                __builtin_add_overflow(sum, term, &sum)) {
                PyMem_Free(table);
                overflowed();
                return NULL;
            }
        }
        table[c] = sum;
    }
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(suppressions); j++) {
        unsigned long bit;
        PyObject *with_o, *without_o;
        i128 with_tag, without;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(suppressions, j), "kOO", &bit, &with_o,
                              &without_o) ||
            to_i128(with_o, &with_tag) || to_i128(without_o, &without)) {
            PyMem_Free(table);
            return NULL;
        }
        for (Py_ssize_t c = 0; c < s->n_chars; c++) {
            if (__builtin_mul_overflow(table[c], (s->masks[c] & bit) ? with_tag : without,
                                       &table[c])) {
                PyMem_Free(table);
                overflowed();
                return NULL;
            }
        }
    }
    i128 **grown = PyMem_Realloc(s->tables, sizeof(i128 *) * (size_t)(s->n_tables + 1));
    if (!grown) {
        PyMem_Free(table);
        return PyErr_NoMemory();
    }
    s->tables = grown;
    s->tables[s->n_tables] = table;
    return PyLong_FromSsize_t(s->n_tables++);
}

/* set_scoring(key, scale, flags, base_den, fight_num, fight_den, ana_num, ana_den, cap,
 *             cooldown, multiplier, multipliers): the scoring every following strike uses;
 * ``multipliers`` numbers the set of multipliers (equal numbers: the same function). */
static PyObject *Loop_set_scoring(Loop *s, PyObject *args) {
    Py_ssize_t key, cap, mults;
    PyObject *scale, *flags, *base_den, *fn, *fd, *an, *ad, *multiplier;
    double cooldown;
    if (!PyArg_ParseTuple(args, "nOO!OOOOOndOn", &key, &scale, &PyList_Type, &flags, &base_den,
                          &fn, &fd, &an, &ad, &cap, &cooldown, &multiplier, &mults))
        return NULL;
    if (mults < 0 || mults > s->n_mults) {
        PyErr_SetString(PyExc_ValueError, "multipliers: the next number or a known one");
        return NULL;
    }
    if (mults == s->n_mults) {
        MultCache *fresh = PyMem_Calloc(1, sizeof(MultCache));
        MultCache **grown = fresh ? PyMem_Realloc(s->mults, sizeof(MultCache *) *
                                                                (size_t)(s->n_mults + 1))
                                  : NULL;
        if (!grown) {
            PyMem_Free(fresh);
            return PyErr_NoMemory();
        }
        s->mults = grown;
        s->mults[s->n_mults++] = fresh;
    }
    if (key < 0 || key >= s->n_tables) {
        PyErr_SetString(PyExc_ValueError, "key: no such table");
        return NULL;
    }
    if (cap < 1 || cap > MAX_TEAM) {
        PyErr_SetString(PyExc_ValueError, "cap: 1 to 64");
        return NULL;
    }
    i128 v[6];
    PyObject *src[6] = {scale, base_den, fn, fd, an, ad};
    for (int i = 0; i < 6; i++)
        if (to_i128(src[i], &v[i])) return NULL;
    Py_ssize_t nf = PyList_GET_SIZE(flags);
    int32_t *f = PyMem_Calloc((size_t)(nf > 0 ? nf : 1), sizeof(int32_t));
    if (!f) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < nf; i++) {
        long x = PyLong_AsLong(PyList_GET_ITEM(flags, i));
        if (x == -1 && PyErr_Occurred()) {
            PyMem_Free(f);
            return NULL;
        }
        f[i] = (int32_t)x;
    }
    if ((Py_ssize_t)s->max_mask >= nf) {
        PyMem_Free(f);
        PyErr_SetString(PyExc_ValueError, "flags: too short for the tag masks");
        return NULL;
    }
    PyMem_Free(s->flags);
    s->flags = f;
    s->n_flags = nf;
    s->key = key;
    s->table = s->tables[key];
    s->scale = v[0];
    s->base_den = v[1];
    s->fight_num = v[2];
    s->fight_den = v[3];
    s->ana_num = v[4];
    s->ana_den = v[5];
    s->cap = cap;
    s->cooldown = cooldown;
    Py_INCREF(multiplier);
    Py_XSETREF(s->multiplier, multiplier);
    s->mult = s->mults[mults];
    Py_RETURN_NONE;
}

static int multiplier_of(Loop *s, int32_t counts, i128 *num, i128 *den) {
    int idx = (counts >> 8) * MULT_SIDE + (counts & 255);
    MultCache *m = s->mult;
    if (!m->known[idx]) {
        PyObject *got = PyObject_CallFunction(s->multiplier, "i", (int)counts);
        if (!got) return -1;
        PyObject *a, *b;
        int bad = !PyArg_ParseTuple(got, "OO", &a, &b) || to_i128(a, &m->num[idx]) ||
                  to_i128(b, &m->den[idx]);
        Py_DECREF(got);
        if (bad) return -1;
        m->known[idx] = 1;
    }
    *num = m->num[idx];
    *den = m->den[idx];
    return 0;
}

/* Stable sort by contribution, highest first (list.sort(key=..., reverse=True)). */
static void sort_greedy(int32_t *a, int32_t len, const i128 *table) {
    for (int32_t i = 1; i < len; i++) {
        int32_t x = a[i];
        i128 v = table[x];
        int32_t j = i;
        while (j > 0 && table[a[j - 1]] < v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void sort_ascending(int32_t *a, int32_t len) {
    for (int32_t i = 1; i < len; i++) {
        int32_t x = a[i];
        int32_t j = i;
        while (j > 0 && a[j - 1] > x) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* run(until, hp, analysis, seq, fights, analyzes, next_threshold, sample_at, marks, total_hp,
 *     every, on_sample, on_draw, milestones, trace) -> (hp, analysis, seq, fights, analyzes,
 *     killer or -1, kill time)
 *
 * engine.RaidSimulation._play_until, strike for strike. ``every`` is 0 when curses are off;
 * next_threshold None when every breakthrough is done. on_sample(t, hp, analysis, fights,
 * analyzes) -> next sample time; on_draw(t, seq, analysis) -> next threshold or None (it draws,
 * applies and records, and calls set_scoring when the scoring changed); milestones: the list
 * (t, pct) is appended to; trace(p, t, analyze, team, strike number) or None. */
static PyObject *Loop_run(Loop *s, PyObject *args) {
    double until, sample_at;
    PyObject *hp_o, *analysis_o, *threshold_o, *marks_o, *total_o, *on_sample, *on_draw;
    PyObject *milestones, *trace;
    long long seq, fights, analyzes, every;
    if (!PyArg_ParseTuple(args, "dOOLLLOdO!OLOOO!O", &until, &hp_o, &analysis_o, &seq, &fights,
                          &analyzes, &threshold_o, &sample_at, &PyList_Type, &marks_o, &total_o,
                          &every, &on_sample, &on_draw, &PyList_Type, &milestones, &trace))
        return NULL;
    if (s->table == NULL || s->multiplier == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "initialise the loop and set_scoring first");
        return NULL;
    }
    i128 hp, analysis, threshold = 0, total_hp;
    if (to_i128(hp_o, &hp) || to_i128(analysis_o, &analysis) || to_i128(total_o, &total_hp))
        return NULL;
    int has_threshold = threshold_o != Py_None;
    if (has_threshold && to_i128(threshold_o, &threshold)) return NULL;
    if (total_hp > ((i128)1 << 118) || hp > total_hp) {
        PyErr_SetString(PyExc_OverflowError,
                        "boss hp beyond 2^118 for the compiled simulator (use --engine python)");
        return NULL;
    }
    Py_ssize_t n_marks = PyList_GET_SIZE(marks_o), mark_at = 0;
    long marks[128];
    if (n_marks > 128) {
        PyErr_SetString(PyExc_ValueError, "marks: at most 128");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_marks; i++) {
        marks[i] = PyLong_AsLong(PyList_GET_ITEM(marks_o, i));
        if (marks[i] == -1 && PyErr_Occurred()) return NULL;
    }
    Py_ssize_t killer = -1;
    double killed_at = 0.0;
    int32_t team[MAX_TEAM];

    while (s->heap_len && s->heap[0].t < until) {
        Event e = heap_pop(s);
        double t = e.t;
        Py_ssize_t p = e.p;
        if (t >= sample_at) {
            PyObject *h = from_i128(hp), *a = from_i128(analysis);
            PyObject *got = (h && a) ? PyObject_CallFunction(on_sample, "dOOLL", t, h, a, fights,
                                                             analyzes)
                                     : NULL;
            Py_XDECREF(h);
            Py_XDECREF(a);
            if (!got) return NULL;
            sample_at = PyFloat_AsDouble(got);
            Py_DECREF(got);
            if (PyErr_Occurred()) return NULL;
        }
        int32_t *avail = s->avail + s->first[p];
        int32_t size = s->size[p];
        int policy = s->policy[p];
        if (s->has_rest) {
            Py_ssize_t base = s->first[p];
            while (s->re_len[p] && s->re_time[base + s->re_head[p]] <= t) {
                int32_t count = s->re_count[base + s->re_head[p]];
                for (int32_t i = 0; i < count; i++)
                    avail[s->avail_len[p]++] = s->rest_chars[base + (s->rc_head[p] + i) % size];
                s->rc_head[p] = (s->rc_head[p] + count) % size;
                s->re_head[p] = (s->re_head[p] + 1) % size;
                s->re_len[p]--;
                s->sorted_by[p] = -1;
                if (policy == FIXED) sort_ascending(avail, s->avail_len[p]);
            }
            if (!s->avail_len[p]) {
                heap_push(s, in_session(s, p, s->re_time[base + s->re_head[p]]), p);
                continue;
            }
        }
        int32_t len = s->avail_len[p];
        int32_t k = s->cap < len ? (int32_t)s->cap : len;
        if (policy == GREEDY) {
            if (s->sorted_by[p] != s->key) {
                sort_greedy(avail, len, s->table);
                s->sorted_by[p] = s->key;
            }
        } else if (policy == RANDOM) {
            uint64_t z = s->stream[p];
            for (int32_t i = 0; i < k; i++) {
                z = z * LCG_MUL + LCG_ADD;
                int32_t j = i + (int32_t)((double)(z >> 11) * UNIT * (double)(len - i));
                int32_t x = avail[i];
                avail[i] = avail[j];
                avail[j] = x;
            }
            s->stream[p] = z;
        }
        memcpy(team, avail, sizeof(int32_t) * (size_t)k);
        memmove(avail, avail + k, sizeof(int32_t) * (size_t)(len - k));
        s->avail_len[p] = len - k;
        int analyze = has_threshold && s->analyst[p];

        i128 base = 0;
        int32_t counts = 0;
        for (int32_t i = 0; i < k; i++) {
            if (__builtin_add_overflow(base, s->table[team[i]], &base)) {
                overflowed();
                return NULL;
            }
            counts += s->flags[s->masks[team[i]]];
        }
        i128 m_num, m_den, score, damage = 0, points = 0;
        if (multiplier_of(s, counts, &m_num, &m_den) ||
            muldiv(base, s->scale, m_num, s->base_den, m_den, &score))
            return NULL;
        seq += 1;
        if (!analyze) {
            if (muldiv(score, s->fight_num, 1, s->fight_den, 1, &damage)) return NULL;
            if (damage > hp) damage = hp;
            hp -= damage;
        } else {
            if (muldiv(score, s->ana_num, 1, s->ana_den, 1, &points)) return NULL;
            if (__builtin_add_overflow(analysis, points, &analysis)) { overflowed(); return NULL; }
        }
        double cooldown_until = t + s->cooldown;
        if (trace != Py_None) {
            PyObject *ids = PyList_New(k);
            if (!ids) return NULL;
            for (int32_t i = 0; i < k; i++) PyList_SET_ITEM(ids, i, PyLong_FromLong(team[i]));
            PyObject *got = PyObject_CallFunction(trace, "ndONn", p, t,
                                                  analyze ? Py_True : Py_False, ids,
                                                  (Py_ssize_t)(s->strikes[p] + 1));
            if (!got) return NULL;
            Py_DECREF(got);
        }
        s->strikes[p] += 1;
        if (!analyze) {
            fights += 1;
            if (damage) {
                if (__builtin_add_overflow(s->damage[p], damage, &s->damage[p]))
                    { overflowed(); return NULL; }
                while (mark_at < n_marks && hp * 100 <= (i128)marks[mark_at] * total_hp) {
                    PyObject *item = Py_BuildValue("(dl)", t, marks[mark_at]);
                    if (!item || PyList_Append(milestones, item)) {
                        Py_XDECREF(item);
                        return NULL;
                    }
                    Py_DECREF(item);
                    mark_at++;
                }
            }
        } else {
            analyzes += 1;
            if (__builtin_add_overflow(s->analysis[p], points, &s->analysis[p]))
                { overflowed(); return NULL; }
            s->analyze_counts[p] += 1;
        }
        if ((has_threshold && analysis >= threshold) || (every > 0 && seq % every == 0)) {
            PyObject *a = from_i128(analysis);
            PyObject *got = a ? PyObject_CallFunction(on_draw, "dLO", t, seq, a) : NULL;
            Py_XDECREF(a);
            if (!got) return NULL;
            has_threshold = got != Py_None;
            int bad = has_threshold && to_i128(got, &threshold);
            Py_DECREF(got);
            if (bad) return NULL;
        }
        if (hp == 0) {
            killer = p;
            killed_at = t;
            break;
        }
        if (s->has_rest) {
            Py_ssize_t base_slot = s->first[p];
            int32_t entry = (s->re_head[p] + s->re_len[p]) % size;
            int32_t resting = size - (len - k) - k; /* characters resting before this strike */
            s->re_time[base_slot + entry] = t + s->rest;
            s->re_count[base_slot + entry] = k;
            s->re_len[p]++;
            for (int32_t i = 0; i < k; i++)
                s->rest_chars[base_slot + (s->rc_head[p] + resting + i) % size] = team[i];
            if (!s->avail_len[p]) {
                double nxt = s->re_time[base_slot + s->re_head[p]];
                if (!(nxt > cooldown_until)) nxt = cooldown_until;
                heap_push(s, in_session(s, p, nxt), p);
                continue;
            }
        } else if (!s->avail_len[p]) {
            continue; /* every character used for the rest of the raid: the player is done */
        }
        uint64_t z = s->stream[p] = s->stream[p] * LCG_MUL + LCG_ADD;
        double nxt = cooldown_until + s->react_lo + (double)(z >> 11) * s->react_span;
        if (!(nxt < s->session_end[p])) nxt = in_session(s, p, nxt);
        heap_push(s, nxt, p);
    }
    PyObject *h = from_i128(hp), *a = from_i128(analysis);
    if (!h || !a) {
        Py_XDECREF(h);
        Py_XDECREF(a);
        return NULL;
    }
    return Py_BuildValue("(NNLLLnd)", h, a, seq, fights, analyzes, killer, killed_at);
}

/* totals() -> (damage, analysis, strikes, analyze counts), one list each, per player. */
static PyObject *Loop_totals(Loop *s, PyObject *Py_UNUSED(ignored)) {
    PyObject *lists[4];
    for (int j = 0; j < 4; j++) {
        lists[j] = PyList_New(s->n);
        if (!lists[j]) {
            for (int i = 0; i < j; i++) Py_DECREF(lists[i]);
            return NULL;
        }
    }
    for (Py_ssize_t p = 0; p < s->n; p++) {
        PyObject *v[4] = {from_i128(s->damage[p]), from_i128(s->analysis[p]),
                          PyLong_FromLongLong(s->strikes[p]),
                          PyLong_FromLongLong(s->analyze_counts[p])};
        for (int j = 0; j < 4; j++) {
            if (!v[j]) {
                for (int i = 0; i < 4; i++) {
                    Py_XDECREF(v[i]);
                    Py_DECREF(lists[i]);
                }
                return NULL;
            }
        }
        for (int j = 0; j < 4; j++) PyList_SET_ITEM(lists[j], p, v[j]);
    }
    return Py_BuildValue("(NNNN)", lists[0], lists[1], lists[2], lists[3]);
}

static Py_ssize_t Loop_len(Loop *s) { return s->heap_len; }

static PyMethodDef Loop_methods[] = {
    {"add_table", (PyCFunction)Loop_add_table, METH_VARARGS, "add a contribution table"},
    {"set_scoring", (PyCFunction)Loop_set_scoring, METH_VARARGS, "the scoring from now on"},
    {"run", (PyCFunction)Loop_run, METH_VARARGS, "play every attempt before a time"},
    {"totals", (PyCFunction)Loop_totals, METH_NOARGS, "per-player totals"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Loop_as_sequence = {.sq_length = (lenfunc)Loop_len};

static PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "raid.simulation._strikeloop.Loop",
    .tp_doc = "The simulator's strike loop (see engine.py).",
    .tp_basicsize = sizeof(Loop),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Loop_traverse,
    .tp_clear = (inquiry)Loop_clear,
    .tp_free = PyObject_GC_Del,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Loop_init,
    .tp_dealloc = (destructor)Loop_dealloc,
    .tp_methods = Loop_methods,
    .tp_as_sequence = &Loop_as_sequence,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_strikeloop",
    .m_doc = "The simulator's strike loop in C.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__strikeloop(void) {
    if (PyType_Ready(&LoopType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&LoopType);
    if (PyModule_AddObject(m, "Loop", (PyObject *)&LoopType) < 0) {
        Py_DECREF(&LoopType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
