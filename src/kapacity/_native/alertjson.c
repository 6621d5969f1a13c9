/* Kapacitor's alert JSON body (Go encoding/json spelling), written straight from AlertData.
 *
 * The C twin of kapacity.alert.event.encode_alert_json_exact: encode(alert) returns the same
 * bytes, or None for anything it does not handle (big ints, times before 1970 or after 9999,
 * lone surrogates, value types other than str/int/float/bool/None/Time, non-list rows, any
 * attribute error). The caller then takes the pure-Python path, which has the last word (and
 * raises the real error, if any). Returning None is always safe; returning different bytes
 * never is: tests compare both on arbitrary alerts.
 *
 * bind(Time, Level, fallback) must be called once (kapacity.gotypes.Time and Level, the Python
 * encoder) before encode() or render(); render(alert) is encode(alert) or else fallback(alert).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <stdint.h>
#include <math.h>
#include <structmember.h>

/* Sentinel for "not handled here": the caller falls back to Python. */
#define DECLINE (-2)

static PyObject *time_type = NULL;
static PyObject *level_type = NULL;
static PyObject *fallback = NULL;
static PyObject *s_id, *s_message, *s_details, *s_time, *s_duration, *s_level, *s_data,
    *s_previous_level, *s_recoverable, *s_series, *s_name, *s_tags, *s_columns, *s_values,
    *s_ns, *s_name_;

/* Reading a __slots__ attribute (all of AlertData, Series, Result, Time, Duration are slotted
 * dataclasses) through PyObject_GetAttr walks the type's lookup machinery each time; the
 * slot's offset is fixed per type. One cache per attribute: the type seen last (and its
 * version tag: a class changed at run time invalidates it) and the slot's offset. Any other
 * type, a non-slot attribute or an empty slot takes PyObject_GetAttr. */
typedef struct {
    PyTypeObject *type;
    unsigned int version;
    Py_ssize_t offset;
} SlotCache;

static PyObject *get_attr(PyObject *o, PyObject *name, SlotCache *c) {
    PyTypeObject *t = Py_TYPE(o);
    if (t == c->type && t->tp_version_tag == c->version) {
        PyObject *v = *(PyObject **)((char *)o + c->offset);
        if (v != NULL) return Py_NewRef(v);
    } else if (PyType_HasFeature(t, Py_TPFLAGS_VALID_VERSION_TAG)) {
        PyObject *descr = _PyType_Lookup(t, name); /* borrowed */
        if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
            if (m->type == T_OBJECT_EX && !(m->flags & READ_RESTRICTED)) {
                Py_XSETREF(c->type, (PyTypeObject *)Py_NewRef(t));
                c->version = t->tp_version_tag;
                c->offset = m->offset;
            }
        }
    }
    return PyObject_GetAttr(o, name);
}

static SlotCache c_id, c_message, c_details, c_time, c_duration, c_level, c_data, c_previous_level,
    c_recoverable, c_series, c_name, c_tags, c_columns, c_values, c_time_ns, c_duration_ns;

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    char stack[2048];
} Buf;

static int buf_grow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + need) cap *= 2;
    char *np;
    if (b->p == b->stack) {
        np = PyMem_Malloc(cap);
        if (np != NULL) memcpy(np, b->stack, b->len);
    } else {
        np = PyMem_Realloc(b->p, cap);
    }
    if (np == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

static inline int put(Buf *b, const char *s, Py_ssize_t n) {
    if (b->len + n > b->cap && buf_grow(b, n) < 0) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

#define PUT_LIT(b, lit) put((b), (lit), (Py_ssize_t)(sizeof(lit) - 1))

static const char HEX[] = "0123456789abcdef";

/* 0: copy as is; 1: short escape in SHORT_ESC; 2: \u00XX. Python's json (the exact path's
 * encode_basestring) uses \b \f \n \r \t, \" and \\; Go adds <, >, & (HTML-safe). */
static unsigned char ESC[128];
static char SHORT_ESC[128];
/* Bytes that start something put_str must look at: ESC[c] != 0, or 0xE2 (U+2028/2029). */
static unsigned char SPECIAL[256];

static void init_tables(void) {
    for (int c = 0; c < 0x20; c++) ESC[c] = 2;
    ESC['"'] = 1; SHORT_ESC['"'] = '"';
    ESC['\\'] = 1; SHORT_ESC['\\'] = '\\';
    ESC['\b'] = 1; SHORT_ESC['\b'] = 'b';
    ESC['\f'] = 1; SHORT_ESC['\f'] = 'f';
    ESC['\n'] = 1; SHORT_ESC['\n'] = 'n';
    ESC['\r'] = 1; SHORT_ESC['\r'] = 'r';
    ESC['\t'] = 1; SHORT_ESC['\t'] = 't';
    ESC['<'] = 2; ESC['>'] = 2; ESC['&'] = 2;
    for (int c = 0; c < 128; c++) SPECIAL[c] = ESC[c] != 0;
    SPECIAL[0xE2] = 1;
}

static int put_u4(Buf *b, unsigned int cp) {
    char e[6] = {'\\', 'u', HEX[(cp >> 12) & 15], HEX[(cp >> 8) & 15], HEX[(cp >> 4) & 15], HEX[cp & 15]};
    return put(b, e, 6);
}

/* A JSON string literal of a str; DECLINE for lone surrogates (not UTF-8 encodable). */
static int put_str(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) {
        PyErr_Clear();
        return DECLINE;
    }
    /* Worst case 6 bytes out per byte in, plus quotes: reserve once. */
    if (b->len + n * 6 + 2 > b->cap && buf_grow(b, n * 6 + 2) < 0) return -1;
    char *o = b->p + b->len;
    *o++ = '"';
    Py_ssize_t i = 0;
    while (i < n) {
        /* Copy the run of bytes that need no escaping in one go. */
        Py_ssize_t start = i;
        while (i < n && !SPECIAL[(unsigned char)u[i]]) i++;
        if (i > start) {
            memcpy(o, u + start, (size_t)(i - start));
            o += i - start;
            if (i == n) break;
        }
        unsigned char c = (unsigned char)u[i];
        if (c < 0x80) {
            if (ESC[c] == 1) {
                *o++ = '\\';
                *o++ = SHORT_ESC[c];
            } else {
                *o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0';
                *o++ = HEX[c >> 4]; *o++ = HEX[c & 15];
            }
            i++;
        } else if (i + 2 < n && (unsigned char)u[i + 1] == 0x80 &&
                   ((unsigned char)u[i + 2] == 0xA8 || (unsigned char)u[i + 2] == 0xA9)) {
            /* U+2028, U+2029 (E2 80 A8/A9): valid JSON, not valid JavaScript; Go escapes them. */
            *o++ = '\\'; *o++ = 'u'; *o++ = '2'; *o++ = '0'; *o++ = '2';
            *o++ = (unsigned char)u[i + 2] == 0xA8 ? '8' : '9';
            i += 3;
        } else {
            *o++ = (char)c; /* another character starting with E2 */
            i++;
        }
    }
    *o++ = '"';
    b->len = o - b->p;
    return 0;
}

/* Decimal digits of v into the end of tmp[24]; returns the start. */
static char *ull_digits(unsigned long long v, char *end) {
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static int put_ll(Buf *b, long long v) {
    char tmp[24];
    char *end = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *s = ull_digits(u, end);
    if (v < 0) *--s = '-';
    return put(b, s, end - s);
}

/* An exact int; DECLINE beyond 64 bits (rare: the Python path prints any size). */
static int put_int(Buf *b, PyObject *v) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow) return DECLINE;
    if (x == -1 && PyErr_Occurred()) return -1;
    return put_ll(b, x);
}

/* Go's float64 JSON spelling (see gojson.go_float): shortest round-trip digits, fixed
 * notation for 1e-6 <= |f| < 1e21, else exponent form with "e-7" (not "e-07") and "e+21";
 * no ".0" on whole numbers; NaN and infinities as null. */
static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};

/* The common case without dtoa: |f| in [1e-6, 1e9) with at most 6 decimals, i.e. f is the
 * double nearest to m / 10^k for an integer m and a smallest k <= 6. Then "m with k
 * decimals" is the shortest string that reads back as f (a shorter one would have been
 * found at a smaller k) and the only one with k decimals (|f| < 1e9: an ulp is below
 * 1e-6, so no two k-decimal numbers round to the same double); m = round(f * 10^k) is
 * exact (the product's error is far below 0.5). Returns 1 when it wrote f, 0 when the
 * caller must use the general path, -1 on a memory error. */
static int put_float_short(Buf *b, double f) {
    double a = f < 0 ? -f : f;
    if (!(a >= 1e-6 && a < 1e9)) return 0;
    for (int k = 0; k <= 6; k++) {
        double scaled = a * POW10[k];
        double m = nearbyint(scaled);
        if (m / POW10[k] != a) continue;
        char tmp[40];
        char *end = tmp + sizeof tmp;
        unsigned long long u = (unsigned long long)m;
        char *s = end;
        for (int i = 0; i < k; i++) {
            *--s = (char)('0' + u % 10);
            u /= 10;
        }
        if (k) *--s = '.';
        s = ull_digits(u, s);
        if (f < 0) *--s = '-';
        return put(b, s, end - s) < 0 ? -1 : 1;
    }
    return 0;
}

static int put_float(Buf *b, double f) {
    if (Py_IS_NAN(f) || Py_IS_INFINITY(f)) return PUT_LIT(b, "null");
    int done = put_float_short(b, f);
    if (done) return done < 0 ? -1 : 0;
    char *r = PyOS_double_to_string(f, 'r', 0, 0, NULL);
    if (r == NULL) return -1;
    int rc;
    char *e = strchr(r, 'e');
    if (e == NULL) {
        rc = put(b, r, (Py_ssize_t)strlen(r));
        PyMem_Free(r);
        return rc;
    }
    double a = f < 0 ? -f : f;
    if (a < 1e-6 || a >= 1e21) {
        /* Python writes "1e-07" / "1e+21" / "1.5e-300": Go trims only a 2-digit negative
         * exponent's leading zero. */
        size_t head = (size_t)(e - r);
        rc = put(b, r, (Py_ssize_t)head);
        if (rc == 0) {
            const char *x = e + 2;  /* after "e+" / "e-" */
            if (e[1] == '-') {
                if (x[0] == '0' && x[1] != '\0' && x[2] == '\0') x++;
                rc = PUT_LIT(b, "e-");
            } else {
                rc = PUT_LIT(b, "e+");
            }
            if (rc == 0) rc = put(b, x, (Py_ssize_t)strlen(x));
        }
        PyMem_Free(r);
        return rc;
    }
    /* Fixed notation from Python's "d[.ddd]e±XX". */
    char digits[32];
    int nd = 0;
    const char *p = r;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; p < e; p++) {
        if (*p >= '0' && *p <= '9' && nd < (int)sizeof digits) digits[nd++] = *p;
    }
    int exp = atoi(e + 1);
    PyMem_Free(r);
    int point = 1 + exp;  /* digits before the decimal point */
    if (neg && PUT_LIT(b, "-") < 0) return -1;
    if (point <= 0) {
        if (PUT_LIT(b, "0.") < 0) return -1;
        for (int i = 0; i < -point; i++)
            if (PUT_LIT(b, "0") < 0) return -1;
        return put(b, digits, nd);
    }
    if (point >= nd) {
        if (put(b, digits, nd) < 0) return -1;
        for (int i = nd; i < point; i++)
            if (PUT_LIT(b, "0") < 0) return -1;
        return 0;
    }
    if (put(b, digits, point) < 0 || PUT_LIT(b, ".") < 0) return -1;
    return put(b, digits + point, nd - point);
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d) {
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long yy = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

#define MAX_SECS 253402300799LL /* 9999-12-31T23:59:59Z */

/* A Time as a quoted RFC3339Nano string; DECLINE outside 1970..9999 or for a non-int ns. */
static int put_time(Buf *b, PyObject *t) {
    PyObject *nsobj = get_attr(t, s_ns, &c_time_ns);
    if (nsobj == NULL) return -1;
    if (!PyLong_CheckExact(nsobj)) {
        Py_DECREF(nsobj);
        return DECLINE;
    }
    int overflow = 0;
    long long ns = PyLong_AsLongLongAndOverflow(nsobj, &overflow);
    Py_DECREF(nsobj);
    if (ns == -1 && PyErr_Occurred()) return -1;
    if (overflow || ns < 0) return DECLINE;
    long long secs = ns / 1000000000LL;
    long frac = (long)(ns % 1000000000LL);
    if (secs > MAX_SECS) return DECLINE;
    long long y;
    unsigned mo, d;
    civil_from_days(secs / 86400, &y, &mo, &d);
    unsigned sod = (unsigned)(secs % 86400);
    unsigned hh = sod / 3600, mi = (sod / 60) % 60, ss = sod % 60;
    unsigned yy = (unsigned)y; /* 1970..9999 */
    char tmp[40] = {'"', (char)('0' + yy / 1000), (char)('0' + yy / 100 % 10), (char)('0' + yy / 10 % 10),
                    (char)('0' + yy % 10), '-', (char)('0' + mo / 10), (char)('0' + mo % 10), '-',
                    (char)('0' + d / 10), (char)('0' + d % 10), 'T', (char)('0' + hh / 10),
                    (char)('0' + hh % 10), ':', (char)('0' + mi / 10), (char)('0' + mi % 10), ':',
                    (char)('0' + ss / 10), (char)('0' + ss % 10)};
    int n = 20;
    if (frac) {
        /* Nine digits, then Go's RFC3339Nano drops the trailing zeros. */
        tmp[n++] = '.';
        for (int i = 8; i >= 0; i--) {
            tmp[n + i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        n += 9;
        while (tmp[n - 1] == '0') n--;
    }
    tmp[n++] = 'Z';
    tmp[n++] = '"';
    return put(b, tmp, n);
}

/* One value of a row. */
static int put_value(Buf *b, PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyFloat_Type) return put_float(b, PyFloat_AS_DOUBLE(v));
    if (t == &PyUnicode_Type) return put_str(b, v);
    if (t == &PyLong_Type) return put_int(b, v);
    if (v == Py_None) return PUT_LIT(b, "null");
    if (v == Py_True) return PUT_LIT(b, "true");
    if (v == Py_False) return PUT_LIT(b, "false");
    if ((PyObject *)t == time_type) return put_time(b, v);
    return DECLINE;
}

static int put_str_list(Buf *b, PyObject *list) {
    if (PUT_LIT(b, "[") < 0) return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *s = PyList_GET_ITEM(list, i);
        if (!PyUnicode_CheckExact(s)) return DECLINE;
        if (i && PUT_LIT(b, ",") < 0) return -1;
        int rc = put_str(b, s);
        if (rc) return rc;
    }
    return PUT_LIT(b, "]");
}

/* A map[string]string, keys sorted as Go does (code point order = UTF-8 byte order). */
static int put_tags(Buf *b, PyObject *tags) {
    PyObject *keys = PyDict_Keys(tags);
    if (keys == NULL) return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        if (!PyUnicode_CheckExact(PyList_GET_ITEM(keys, i))) {
            rc = DECLINE;
            goto done;
        }
    }
    if (PyList_Sort(keys) < 0) {
        rc = -1;
        goto done;
    }
    if ((rc = PUT_LIT(b, "{")) < 0) goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        PyObject *v = PyDict_GetItemWithError(tags, k);
        if (v == NULL) {
            rc = PyErr_Occurred() ? -1 : DECLINE;  /* changed under us */
            goto done;
        }
        if (!PyUnicode_CheckExact(v)) {
            rc = DECLINE;
            goto done;
        }
        if (i && (rc = PUT_LIT(b, ",")) < 0) goto done;
        if ((rc = put_str(b, k)) != 0) goto done;
        if ((rc = PUT_LIT(b, ":")) < 0) goto done;
        if ((rc = put_str(b, v)) != 0) goto done;
    }
    rc = PUT_LIT(b, "}");
done:
    Py_DECREF(keys);
    return rc;
}

static int put_rows(Buf *b, PyObject *rows) {
    if (PUT_LIT(b, "[") < 0) return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyList_CheckExact(row)) return DECLINE;
        if (i && PUT_LIT(b, ",") < 0) return -1;
        if (PUT_LIT(b, "[") < 0) return -1;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(row); j++) {
            if (j && PUT_LIT(b, ",") < 0) return -1;
            int rc = put_value(b, PyList_GET_ITEM(row, j));
            if (rc) return rc;
        }
        if (PUT_LIT(b, "]") < 0) return -1;
    }
    return PUT_LIT(b, "]");
}

/* Truthiness as the exact path's ``if self.<field>:``: only exact str/dict/list here. */
static int put_series(Buf *b, PyObject *s) {
    PyObject *name = NULL, *tags = NULL, *columns = NULL, *values = NULL;
    int rc = DECLINE;
    int any = 0;
    if ((name = get_attr(s, s_name, &c_name)) == NULL || (tags = get_attr(s, s_tags, &c_tags)) == NULL ||
        (columns = get_attr(s, s_columns, &c_columns)) == NULL ||
        (values = get_attr(s, s_values, &c_values)) == NULL) {
        rc = -1;
        goto done;
    }
    if (!PyUnicode_CheckExact(name) || !PyDict_CheckExact(tags) || !PyList_CheckExact(columns) ||
        !PyList_CheckExact(values))
        goto done;
    if ((rc = PUT_LIT(b, "{")) < 0) goto done;
    if (PyUnicode_GET_LENGTH(name)) {
        if ((rc = PUT_LIT(b, "\"name\":")) < 0 || (rc = put_str(b, name)) != 0) goto done;
        any = 1;
    }
    if (PyDict_GET_SIZE(tags)) {
        if ((rc = any ? PUT_LIT(b, ",\"tags\":") : PUT_LIT(b, "\"tags\":")) < 0) goto done;
        if ((rc = put_tags(b, tags)) != 0) goto done;
        any = 1;
    }
    if (PyList_GET_SIZE(columns)) {
        if ((rc = any ? PUT_LIT(b, ",\"columns\":") : PUT_LIT(b, "\"columns\":")) < 0) goto done;
        if ((rc = put_str_list(b, columns)) != 0) goto done;
        any = 1;
    }
    if (PyList_GET_SIZE(values)) {
        if ((rc = any ? PUT_LIT(b, ",\"values\":") : PUT_LIT(b, "\"values\":")) < 0) goto done;
        if ((rc = put_rows(b, values)) != 0) goto done;
    }
    rc = PUT_LIT(b, "}");
done:
    Py_XDECREF(name);
    Py_XDECREF(tags);
    Py_XDECREF(columns);
    Py_XDECREF(values);
    return rc;
}

/* Level members seen so far and their names (members are singletons: compared by identity;
 * both are kept alive here). */
#define LEVEL_CACHE 8
static PyObject *level_obj[LEVEL_CACHE], *level_name[LEVEL_CACHE];

/* A level's name (Level members carry it in ``_name_``), as a JSON string. */
static int put_level_name(Buf *b, PyObject *level);

static int put_level(Buf *b, PyObject *level) {
    if ((PyObject *)Py_TYPE(level) != level_type) return DECLINE;
    return put_level_name(b, level);
}

static int put_level_name(Buf *b, PyObject *level) {
    for (int i = 0; i < LEVEL_CACHE && level_obj[i] != NULL; i++) {
        if (level_obj[i] == level) return put_str(b, level_name[i]);
    }
    PyObject *name = PyObject_GetAttr(level, s_name_);
    if (name == NULL) return -1;
    if (!PyUnicode_CheckExact(name)) {
        Py_DECREF(name);
        return DECLINE;
    }
    int rc = put_str(b, name);
    for (int i = 0; i < LEVEL_CACHE; i++) {
        if (level_obj[i] == NULL) {
            level_obj[i] = Py_NewRef(level);
            level_name[i] = Py_NewRef(name);
            break;
        }
    }
    Py_DECREF(name);
    return rc;
}

static int put_attr_str(Buf *b, PyObject *alert, PyObject *attr, SlotCache *c) {
    PyObject *v = get_attr(alert, attr, c);
    if (v == NULL) return -1;
    int rc = PyUnicode_Check(v) ? put_str(b, v) : DECLINE;
    Py_DECREF(v);
    return rc;
}

static int put_attr_ns(Buf *b, PyObject *alert, PyObject *attr, SlotCache *c) {
    PyObject *v = get_attr(alert, attr, c);
    if (v == NULL) return -1;
    PyObject *ns = get_attr(v, s_ns, &c_duration_ns);
    Py_DECREF(v);
    if (ns == NULL) return -1;
    int rc = PyLong_CheckExact(ns) ? put_int(b, ns) : DECLINE;
    Py_DECREF(ns);
    return rc;
}

static int put_attr_time(Buf *b, PyObject *alert) {
    PyObject *v = get_attr(alert, s_time, &c_time);
    if (v == NULL) return -1;
    int rc = (PyObject *)Py_TYPE(v) == time_type ? put_time(b, v) : DECLINE;
    Py_DECREF(v);
    return rc;
}

static int put_attr_level(Buf *b, PyObject *alert, PyObject *attr, SlotCache *c) {
    PyObject *v = get_attr(alert, attr, c);
    if (v == NULL) return -1;
    int rc = put_level(b, v);
    Py_DECREF(v);
    return rc;
}

static int put_data(Buf *b, PyObject *alert) {
    PyObject *data = get_attr(alert, s_data, &c_data);
    if (data == NULL) return -1;
    PyObject *series = get_attr(data, s_series, &c_series);
    Py_DECREF(data);
    if (series == NULL) return -1;
    int rc = DECLINE;
    if (!PyList_CheckExact(series)) goto done;
    if ((rc = PUT_LIT(b, "{\"series\":[")) < 0) goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(series); i++) {
        if (i && (rc = PUT_LIT(b, ",")) < 0) goto done;
        if ((rc = put_series(b, PyList_GET_ITEM(series, i))) != 0) goto done;
    }
    rc = PUT_LIT(b, "]}");
done:
    Py_DECREF(series);
    return rc;
}

static int put_alert(Buf *b, PyObject *a) {
    int rc;
#define STEP(expr) if ((rc = (expr)) != 0) return rc
    STEP(PUT_LIT(b, "{\"id\":"));
    STEP(put_attr_str(b, a, s_id, &c_id));
    STEP(PUT_LIT(b, ",\"message\":"));
    STEP(put_attr_str(b, a, s_message, &c_message));
    STEP(PUT_LIT(b, ",\"details\":"));
    STEP(put_attr_str(b, a, s_details, &c_details));
    STEP(PUT_LIT(b, ",\"time\":"));
    STEP(put_attr_time(b, a));
    STEP(PUT_LIT(b, ",\"duration\":"));
    STEP(put_attr_ns(b, a, s_duration, &c_duration));
    STEP(PUT_LIT(b, ",\"level\":"));
    STEP(put_attr_level(b, a, s_level, &c_level));
    STEP(PUT_LIT(b, ",\"data\":"));
    STEP(put_data(b, a));
    STEP(PUT_LIT(b, ",\"previousLevel\":"));
    STEP(put_attr_level(b, a, s_previous_level, &c_previous_level));
    PyObject *rec = get_attr(a, s_recoverable, &c_recoverable);
    if (rec == NULL) return -1;
    int truth = PyObject_IsTrue(rec);
    Py_DECREF(rec);
    if (truth < 0) return -1;
    STEP(truth ? PUT_LIT(b, ",\"recoverable\":true}\n") : PUT_LIT(b, ",\"recoverable\":false}\n"));
#undef STEP
    return 0;
}

/* ---- go_json(value): kapacity.alert.templates.go_json_py, the ``json`` of templates ----
 *
 * Template data: str, float, int, bool, None, Time, Duration, Level, dict (keys sorted, as
 * Go sorts map keys), GoStruct (a dict standing for a Go struct: insertion order), list and
 * tuple. Exact types only; anything else (subclasses, other objects, dict keys that are not
 * str, ints beyond 64 bits, nesting deeper than JSON_MAX_DEPTH) declines the whole value. */
static PyObject *json_struct_type = NULL, *json_time_type = NULL, *json_duration_type = NULL,
                *json_level_type = NULL;
static SlotCache c_json_duration_ns;

#define JSON_MAX_DEPTH 64

static int put_json(Buf *b, PyObject *v, int depth);

static int put_member(Buf *b, PyObject *k, PyObject *v, int first, int depth) {
    if (!PyUnicode_CheckExact(k)) return DECLINE;
    if (!first && PUT_LIT(b, ",") < 0) return -1;
    int rc = put_str(b, k);
    if (rc == 0) rc = PUT_LIT(b, ":");
    if (rc == 0) {
        Py_INCREF(v);
        rc = put_json(b, v, depth + 1);
        Py_DECREF(v);
    }
    return rc;
}

static int put_struct(Buf *b, PyObject *d, int depth) {
    if (PUT_LIT(b, "{") < 0) return -1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    int first = 1;
    while (PyDict_Next(d, &pos, &k, &v)) {
        int rc = put_member(b, k, v, first, depth);
        if (rc) return rc;
        first = 0;
    }
    return PUT_LIT(b, "}");
}

static int put_map(Buf *b, PyObject *d, int depth) {
    PyObject *keys = PyDict_Keys(d);
    if (keys == NULL) return -1;
    int rc = 0;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_CheckExact(PyList_GET_ITEM(keys, i))) {
            rc = DECLINE;
            goto done;
        }
    }
    if (n > 1 && PyList_Sort(keys) < 0) {
        rc = -1;
        goto done;
    }
    if ((rc = PUT_LIT(b, "{")) < 0) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        PyObject *v = PyDict_GetItemWithError(d, k);
        if (v == NULL) {
            rc = PyErr_Occurred() ? -1 : DECLINE;
            goto done;
        }
        if ((rc = put_member(b, k, v, i == 0, depth)) != 0) goto done;
    }
    rc = PUT_LIT(b, "}");
done:
    Py_DECREF(keys);
    return rc;
}

static int put_json(Buf *b, PyObject *v, int depth) {
    if (depth > JSON_MAX_DEPTH) return DECLINE;
    PyTypeObject *t = Py_TYPE(v);
    PyObject *type = (PyObject *)t;
    if (t == &PyUnicode_Type) return put_str(b, v);
    if (t == &PyFloat_Type) return put_float(b, PyFloat_AS_DOUBLE(v));
    if (type == json_struct_type) return put_struct(b, v, depth);
    if (t == &PyDict_Type) return put_map(b, v, depth);
    if (t == &PyLong_Type) return put_int(b, v);
    if (v == Py_None) return PUT_LIT(b, "null");
    if (v == Py_True) return PUT_LIT(b, "true");
    if (v == Py_False) return PUT_LIT(b, "false");
    if (type == json_time_type) return put_time(b, v);
    if (type == json_level_type) return put_level_name(b, v);
    if (type == json_duration_type) {
        PyObject *ns = get_attr(v, s_ns, &c_json_duration_ns);
        if (ns == NULL) return -1;
        int rc = PyLong_CheckExact(ns) ? put_int(b, ns) : DECLINE;
        Py_DECREF(ns);
        return rc;
    }
    if (t == &PyList_Type || t == &PyTuple_Type) {
        if (PUT_LIT(b, "[") < 0) return -1;
        PyObject *seq = PySequence_Fast(v, "");  /* a new reference: items stay alive */
        if (seq == NULL) return -1;
        int rc = 0;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            if (i && (rc = PUT_LIT(b, ",")) < 0) break;
            if ((rc = put_json(b, PySequence_Fast_GET_ITEM(seq, i), depth + 1)) != 0) break;
        }
        Py_DECREF(seq);
        return rc ? rc : PUT_LIT(b, "]");
    }
    return DECLINE;
}

static PyObject *go_json(PyObject *self, PyObject *value) {
    if (json_struct_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "alertjson.bind_json(GoStruct, Time, Duration, Level) was not called");
        return NULL;
    }
    Buf b;
    b.p = b.stack;
    b.len = 0;
    b.cap = (Py_ssize_t)sizeof b.stack;
    int rc = put_json(&b, value, 0);
    PyObject *out;
    if (rc == 0) {
        out = PyUnicode_DecodeUTF8(b.p, b.len, NULL);
    } else {
        PyErr_Clear();  /* declined, or an error the Python path meets (and reports) again */
        out = Py_NewRef(Py_None);
    }
    if (b.p != b.stack) PyMem_Free(b.p);
    return out;
}

static PyObject *bind_json(PyObject *self, PyObject *args) {
    PyObject *s, *t, *d, *l;
    if (!PyArg_ParseTuple(args, "OOOO:bind_json", &s, &t, &d, &l)) return NULL;
    if (!PyType_Check(s) || !PyType_Check(t) || !PyType_Check(d) || !PyType_Check(l)) {
        PyErr_SetString(PyExc_TypeError, "bind_json() expects the GoStruct, Time, Duration and Level types");
        return NULL;
    }
    Py_XSETREF(json_struct_type, Py_NewRef(s));
    Py_XSETREF(json_time_type, Py_NewRef(t));
    Py_XSETREF(json_duration_type, Py_NewRef(d));
    Py_XSETREF(json_level_type, Py_NewRef(l));
    Py_RETURN_NONE;
}

static PyObject *encode(PyObject *self, PyObject *alert) {
    if (time_type == NULL || level_type == NULL || fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "alertjson.bind(Time, Level, fallback) was not called");
        return NULL;
    }
    Buf b;
    b.p = b.stack;
    b.len = 0;
    b.cap = (Py_ssize_t)sizeof b.stack;
    int rc = put_alert(&b, alert);
    PyObject *out = NULL;
    if (rc == 0) {
        out = PyBytes_FromStringAndSize(b.p, b.len);
    } else {
        /* Declined, or an error the Python path will meet (and report) again. */
        PyErr_Clear();
        out = Py_NewRef(Py_None);
    }
    if (b.p != b.stack) PyMem_Free(b.p);
    return out;
}

/* render(alert): encode(), or fallback(alert) where encode() declines: the whole
 * encode_alert_json without a Python frame in the common case. */
static PyObject *render(PyObject *self, PyObject *alert) {
    PyObject *out = encode(self, alert);
    if (out != Py_None) return out;
    Py_DECREF(out);
    return PyObject_CallOneArg(fallback, alert);
}

static PyObject *bind(PyObject *self, PyObject *args) {
    PyObject *t, *l, *f;
    if (!PyArg_ParseTuple(args, "OOO:bind", &t, &l, &f)) return NULL;
    if (!PyType_Check(t) || !PyType_Check(l) || !PyCallable_Check(f)) {
        PyErr_SetString(PyExc_TypeError, "bind() expects kapacity.gotypes.Time, Level and a fallback encoder");
        return NULL;
    }
    Py_XSETREF(time_type, Py_NewRef(t));
    Py_XSETREF(level_type, Py_NewRef(l));
    Py_XSETREF(fallback, Py_NewRef(f));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_O,
     "encode(alert) -> bytes | None: Kapacitor's JSON body of an AlertData, or None when the "
     "pure-Python encoder must decide."},
    {"render", render, METH_O,
     "render(alert) -> bytes: encode(alert), or the bound fallback's bytes where it declines."},
    {"go_json", go_json, METH_O,
     "go_json(value) -> str | None: Go's json.Marshal of alert template data (see "
     "kapacity.alert.templates.go_json), or None when the pure-Python encoder must decide."},
    {"bind_json", bind_json, METH_VARARGS,
     "bind_json(GoStruct, Time, Duration, Level): the types go_json() writes as a Go struct, "
     "an RFC3339Nano time, nanoseconds and a level name."},
    {"bind", bind, METH_VARARGS,
     "bind(Time, Level, fallback): the time type written as RFC3339Nano, the level enum, and "
     "the encoder render() falls back to."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "alertjson", NULL, -1, methods};

PyMODINIT_FUNC PyInit_alertjson(void) {
    init_tables();
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_id, "id");
    INTERN(s_message, "message");
    INTERN(s_details, "details");
    INTERN(s_time, "time");
    INTERN(s_duration, "duration");
    INTERN(s_level, "level");
    INTERN(s_data, "data");
    INTERN(s_previous_level, "previous_level");
    INTERN(s_recoverable, "recoverable");
    INTERN(s_series, "series");
    INTERN(s_name, "name");
    INTERN(s_tags, "tags");
    INTERN(s_columns, "columns");
    INTERN(s_values, "values");
    INTERN(s_ns, "ns");
    INTERN(s_name_, "_name_");
#undef INTERN
    return PyModule_Create(&module);
}
