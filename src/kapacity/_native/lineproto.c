/* Line protocol's fast path in C: the twin of kapacity.lineprotocol._parse._fast_lines.
 *
 * fast_body(body, multiplier, now_ns, database, retention_policy, point_type, keys, typed,
 *           max_keys, max_key_length)
 *
 * Only a "plain" body is taken (every byte ASCII, none of  \ " TAB NUL CR VT FF 0x1c-0x1f:
 * the same gate as the pure path); for any other body the answer is None and the caller
 * parses it in Python. For a plain body the answer is (found, unsure): ``found`` has a Point
 * per good line and a None per line this code is not sure about, ``unsure`` the 0-based
 * indices of those lines in ``body.split(b"\n")``. Empty lines and comments give nothing.
 *
 * The rule that keeps it correct: this code accepts only a strict subset of what the exact
 * scanner (_scan.py) accepts, giving the same point for it, and is "unsure" of everything
 * else; the exact scanner then decides, and words the error. It never reports an error.
 *
 * The series-key cache is the pure path's own dict (key text -> (name, sorted tags)), so
 * both paths fill and use the same entries.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define MAX_NANO_TIME ((uint64_t)INT64_MAX - 1)
#define MAX_TAGS 64

/* Byte classes: 1 = refuses the whole body (not plain). */
static unsigned char not_plain[256];

/* Point construction. A slots dataclass whose __init__ only stores its arguments can be
 * filled in directly (6x cheaper than calling it); any other type is called. */
static const char *point_fields[6] = {"name", "tags", "fields", "time", "database",
                                      "retention_policy"};

typedef struct {
    PyTypeObject *type;
    int direct;
    Py_ssize_t offsets[6];
} PointMaker;

static void
maker_init(PointMaker *mk, PyObject *type)
{
    mk->type = (PyTypeObject *)type;
    mk->direct = 0;
    if (!PyType_Check(type))
        return;
    PyObject *dict = mk->type->tp_dict;
    if (dict == NULL || PyDict_GetItemString(dict, "__post_init__") != NULL
        || PyDict_GetItemString(dict, "__dataclass_fields__") == NULL
        || mk->type->tp_dictoffset != 0)
        return;
    for (int i = 0; i < 6; i++) {
        PyObject *descr = PyDict_GetItemString(dict, point_fields[i]);
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type))
            return;
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY))
            return;
        mk->offsets[i] = m->offset;
    }
    mk->direct = 1;
}

/* Steals the references to its six arguments (even on failure). */
static PyObject *
make_point(PointMaker *mk, PyObject *args[6])
{
    PyObject *p;
    if (mk->direct) {
        p = mk->type->tp_alloc(mk->type, 0);
        if (p != NULL) {
            for (int i = 0; i < 6; i++)
                *(PyObject **)((char *)p + mk->offsets[i]) = args[i];
            return p;
        }
    }
    else {
        p = PyObject_Vectorcall((PyObject *)mk->type, args, 6, NULL);
    }
    for (int i = 0; i < 6; i++)
        Py_DECREF(args[i]);
    return p;
}

static PyObject *
ascii_str(const char *s, Py_ssize_t n)
{
    PyObject *u = PyUnicode_New(n, 127);
    if (u != NULL)
        memcpy(PyUnicode_DATA(u), s, (size_t)n);
    return u;
}

typedef struct {
    const char *k;
    Py_ssize_t kn;
    const char *v;
    Py_ssize_t vn;
} Tag;

static int
tag_cmp(const Tag *a, const Tag *b)
{
    Py_ssize_t n = a->kn < b->kn ? a->kn : b->kn;
    int c = memcmp(a->k, b->k, (size_t)n);
    if (c != 0)
        return c;
    return (a->kn > b->kn) - (a->kn < b->kn);
}

/* ``name,k=v,...`` -> new (name, sorted tags) tuple; NULL without an error when unsure. */
static PyObject *
parse_key(const char *s, Py_ssize_t n)
{
    Tag tags[MAX_TAGS];
    int count = 0;
    const char *end = s + n;
    const char *comma = memchr(s, ',', (size_t)n);
    const char *name_end = comma ? comma : end;
    if (name_end == s || s[0] == '#')
        return NULL;
    const char *p = comma;
    while (p != NULL) {
        const char *t = p + 1;
        const char *next = memchr(t, ',', (size_t)(end - t));
        const char *te = next ? next : end;
        const char *eq = memchr(t, '=', (size_t)(te - t));
        if (eq == NULL || eq == t || eq + 1 == te || memchr(eq + 1, '=', (size_t)(te - eq - 1)))
            return NULL;
        if (count == MAX_TAGS)
            return NULL;
        Tag tag = {t, eq - t, eq + 1, te - eq - 1};
        /* insertion sort, refusing duplicates */
        int j = count;
        while (j > 0) {
            int c = tag_cmp(&tags[j - 1], &tag);
            if (c == 0)
                return NULL;
            if (c < 0)
                break;
            tags[j] = tags[j - 1];
            j--;
        }
        tags[j] = tag;
        count++;
        p = next;
    }
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (int i = 0; i < count; i++) {
        PyObject *k = ascii_str(tags[i].k, tags[i].kn);
        PyObject *v = k ? ascii_str(tags[i].v, tags[i].vn) : NULL;
        if (v == NULL || PyDict_SetItem(dict, k, v) < 0) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(dict);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    PyObject *name = ascii_str(s, name_end - s);
    if (name == NULL) {
        Py_DECREF(dict);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(name);
        Py_DECREF(dict);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, name);
    PyTuple_SET_ITEM(pair, 1, dict);
    return pair;
}

static int
all_digits(const char *s, const char *e)
{
    if (s == e)
        return 0;
    for (; s < e; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Decimal digits (at least one) to uint64; 0 on overflow. */
static int
to_u64(const char *s, const char *e, uint64_t *out)
{
    uint64_t v = 0;
    if (!all_digits(s, e))
        return 0;
    for (; s < e; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* line protocol's float: -?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)? */
static int
float_syntax(const char *s, const char *e)
{
    if (s < e && *s == '-')
        s++;
    const char *m = s;
    while (s < e && *s >= '0' && *s <= '9')
        s++;
    int before = s > m;
    int after = 0;
    if (s < e && *s == '.') {
        s++;
        const char *f = s;
        while (s < e && *s >= '0' && *s <= '9')
            s++;
        after = s > f;
    }
    if (!before && !after)
        return 0;
    if (s < e && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < e && (*s == '+' || *s == '-'))
            s++;
        const char *x = s;
        while (s < e && *s >= '0' && *s <= '9')
            s++;
        if (s == x)
            return 0;
    }
    return s == e;
}

static int
is_bool(const char *s, Py_ssize_t n, int *value)
{
    static const char *trues[] = {"t", "T", "true", "True", "TRUE"};
    static const char *falses[] = {"f", "F", "false", "False", "FALSE"};
    for (int i = 0; i < 5; i++) {
        if ((Py_ssize_t)strlen(trues[i]) == n && memcmp(trues[i], s, (size_t)n) == 0) {
            *value = 1;
            return 1;
        }
        if ((Py_ssize_t)strlen(falses[i]) == n && memcmp(falses[i], s, (size_t)n) == 0) {
            *value = 0;
            return 1;
        }
    }
    return 0;
}

/* One field value; a new reference, or NULL (no error set when unsure). */
static PyObject *
parse_value(const char *s, const char *e)
{
    char buf[64];
    char last = e[-1];
    if (last == 'i') {
        const char *d = s;
        int neg = d < e && *d == '-';
        uint64_t v;
        if (!to_u64(d + neg, e - 1, &v))
            return NULL;
        if (neg) {
            if (v > (uint64_t)INT64_MAX + 1)
                return NULL;
            return PyLong_FromLongLong(v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v);
        }
        if (v > (uint64_t)INT64_MAX)
            return NULL;
        return PyLong_FromLongLong((long long)v);
    }
    if (last == 'u') {
        uint64_t v;
        if (!to_u64(s, e - 1, &v))
            return NULL;
        return PyLong_FromUnsignedLongLong(v);
    }
    if ((last >= '0' && last <= '9') || last == '.') {
        Py_ssize_t n = e - s;
        if (n >= (Py_ssize_t)sizeof(buf) || !float_syntax(s, e))
            return NULL;
        memcpy(buf, s, (size_t)n);
        buf[n] = '\0';
        char *stop = NULL;
        double d = PyOS_string_to_double(buf, &stop, NULL);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        if (stop != buf + n || !isfinite(d))
            return NULL;
        return PyFloat_FromDouble(d);
    }
    int flag;
    if (is_bool(s, e - s, &flag))
        return PyBool_FromLong(flag);
    return NULL;
}

/* Lines of a body repeat their field keys and often their values: the objects made for
 * the field at position i of the last line are kept, and reused when the next line has the
 * same text there (strings and numbers are immutable, so sharing them is invisible). */
#define FIELD_SLOTS 16
#define VALUE_TEXT 32

typedef struct {
    PyObject *key;
    PyObject *value;
    Py_ssize_t vlen;
    char vtext[VALUE_TEXT];
} FieldSlot;

static void
slots_clear(FieldSlot *slots)
{
    for (int i = 0; i < FIELD_SLOTS; i++) {
        Py_CLEAR(slots[i].key);
        Py_CLEAR(slots[i].value);
        slots[i].vlen = -1;
    }
}

static PyObject *
slot_key(FieldSlot *slot, const char *s, Py_ssize_t n)
{
    if (slot != NULL && slot->key != NULL && PyUnicode_GET_LENGTH(slot->key) == n
        && memcmp(PyUnicode_DATA(slot->key), s, (size_t)n) == 0)
        return Py_NewRef(slot->key);
    PyObject *key = ascii_str(s, n);
    if (key != NULL && slot != NULL)
        Py_XSETREF(slot->key, Py_NewRef(key));
    return key;
}

/* A new reference, or NULL (no error set when unsure). */
static PyObject *
slot_value(FieldSlot *slot, const char *s, const char *e)
{
    Py_ssize_t n = e - s;
    if (slot != NULL && slot->vlen == n && memcmp(slot->vtext, s, (size_t)n) == 0)
        return Py_NewRef(slot->value);
    PyObject *value = parse_value(s, e);
    if (value != NULL && slot != NULL && n <= VALUE_TEXT) {
        Py_XSETREF(slot->value, Py_NewRef(value));
        memcpy(slot->vtext, s, (size_t)n);
        slot->vlen = n;
    }
    return value;
}

/* Fields ``k=v,...`` -> new dict; NULL without an error when unsure. */
static PyObject *
parse_fields(FieldSlot *slots, const char *s, const char *end)
{
    int position = 0;
    PyObject *fields = PyDict_New();
    if (fields == NULL)
        return NULL;
    const char *p = s;
    for (;;) {
        const char *next = memchr(p, ',', (size_t)(end - p));
        const char *fe = next ? next : end;
        const char *eq = memchr(p, '=', (size_t)(fe - p));
        if (eq == NULL || eq == p || eq + 1 == fe)
            goto unsure;
        FieldSlot *slot = position < FIELD_SLOTS ? &slots[position] : NULL;
        position++;
        PyObject *value = slot_value(slot, eq + 1, fe);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(fields);
                return NULL;
            }
            goto unsure;
        }
        PyObject *key = slot_key(slot, p, eq - p);
        if (key == NULL || PyDict_SetItem(fields, key, value) < 0) {
            Py_XDECREF(key);
            Py_DECREF(value);
            Py_DECREF(fields);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (next == NULL)
            return fields;
        p = next + 1;
    }
unsure:
    Py_DECREF(fields);
    return NULL;
}

typedef struct {
    long long multiplier;
    PyObject *now_ns, *database, *rp, *keys, *typed;
    Py_ssize_t max_keys, max_key_length;
    PointMaker maker;
    FieldSlot slots[FIELD_SLOTS];
} Ctx;

/* One line -> 1 (a point in *out), 0 unsure, -1 error. */
static int
parse_line(Ctx *c, const char *s, const char *e, PyObject **out)
{
    const char *sp1 = memchr(s, ' ', (size_t)(e - s));
    if (sp1 == NULL)
        return 0;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1));
    const char *fields_end = sp2 ? sp2 : e;
    PyObject *ns;
    if (sp2 != NULL) {
        if (memchr(sp2 + 1, ' ', (size_t)(e - sp2 - 1)))
            return 0;
        uint64_t stamp, t;
        if (!to_u64(sp2 + 1, e, &stamp) || __builtin_mul_overflow(stamp, (uint64_t)c->multiplier, &t)
            || t > MAX_NANO_TIME)
            return 0;
        ns = PyLong_FromLongLong((long long)t);
        if (ns == NULL)
            return -1;
    }
    else {
        ns = Py_NewRef(c->now_ns);
    }
    Py_ssize_t key_len = sp1 - s;
    if (key_len > c->max_key_length) {
        Py_DECREF(ns);
        return 0;
    }
    PyObject *key = ascii_str(s, key_len);
    if (key == NULL) {
        Py_DECREF(ns);
        return -1;
    }
    /* A strong reference: an allocation below may run the collector, whose finalizers may
     * let another thread in, which may empty the cache. */
    PyObject *cached = Py_XNewRef(PyDict_GetItemWithError(c->keys, key));
    if (cached == NULL) {
        if (PyErr_Occurred())
            goto error;
        PyObject *pair = parse_key(s, key_len);
        if (pair == NULL) {
            if (PyErr_Occurred())
                goto error;
            Py_DECREF(key);
            Py_DECREF(ns);
            return 0;
        }
        if (PyDict_GET_SIZE(c->keys) >= c->max_keys) {
            PyDict_Clear(c->keys);
            if (PySet_Clear(c->typed) < 0) {
                Py_DECREF(pair);
                goto error;
            }
        }
        if (PyDict_SetItem(c->keys, key, pair) < 0) {
            Py_DECREF(pair);
            goto error;
        }
        cached = pair;
    }
    Py_DECREF(key);
    if (!PyTuple_CheckExact(cached) || PyTuple_GET_SIZE(cached) != 2
        || !PyDict_CheckExact(PyTuple_GET_ITEM(cached, 1))) {
        Py_DECREF(cached);
        Py_DECREF(ns);
        PyErr_SetString(PyExc_TypeError, "series-key cache entries must be (name, tags dict)");
        return -1;
    }
    PyObject *fields = parse_fields(c->slots, sp1 + 1, fields_end);
    if (fields == NULL) {
        Py_DECREF(cached);
        Py_DECREF(ns);
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *tags = PyDict_Copy(PyTuple_GET_ITEM(cached, 1));
    if (tags == NULL) {
        Py_DECREF(cached);
        Py_DECREF(fields);
        Py_DECREF(ns);
        return -1;
    }
    PyObject *args[6] = {Py_NewRef(PyTuple_GET_ITEM(cached, 0)), tags, fields, ns,
                         Py_NewRef(c->database), Py_NewRef(c->rp)};
    Py_DECREF(cached);
    *out = make_point(&c->maker, args);
    return *out == NULL ? -1 : 1;
error:
    Py_DECREF(key);
    Py_DECREF(ns);
    return -1;
}

static PyObject *
fast_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "fast_body() takes 10 arguments");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const char *body = view.buf;
    Py_ssize_t size = view.len;
    PyObject *result = NULL, *found = NULL, *unsure = NULL;
    Ctx c;
    memset(c.slots, 0, sizeof(c.slots));
    c.multiplier = PyLong_AsLongLong(args[1]);
    if (c.multiplier == -1 && PyErr_Occurred())
        goto done;
    if (c.multiplier < 1) {
        PyErr_SetString(PyExc_ValueError, "multiplier must be positive");
        goto done;
    }
    c.now_ns = args[2];
    c.database = args[3];
    c.rp = args[4];
    c.keys = args[6];
    c.typed = args[7];
    if (!PyDict_CheckExact(c.keys) || !PySet_Check(c.typed)) {
        PyErr_SetString(PyExc_TypeError, "keys must be a dict and typed a set");
        goto done;
    }
    c.max_keys = PyLong_AsSsize_t(args[8]);
    c.max_key_length = PyLong_AsSsize_t(args[9]);
    if (PyErr_Occurred())
        goto done;
    maker_init(&c.maker, args[5]);

    for (Py_ssize_t i = 0; i < size; i++) {
        if (not_plain[(unsigned char)body[i]]) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    found = PyList_New(0);
    unsure = PyList_New(0);
    if (found == NULL || unsure == NULL)
        goto done;
    const char *p = body, *end = body + size;
    Py_ssize_t index = 0;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le > p && *p != '#') {
            PyObject *point = NULL;
            int rc = parse_line(&c, p, le, &point);
            if (rc < 0)
                goto done;
            if (rc == 0) {
                PyObject *at = PyLong_FromSsize_t(index);
                if (at == NULL || PyList_Append(unsure, at) < 0) {
                    Py_XDECREF(at);
                    goto done;
                }
                Py_DECREF(at);
                point = Py_NewRef(Py_None);
            }
            rc = PyList_Append(found, point);
            Py_DECREF(point);
            if (rc < 0)
                goto done;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
        index++;
    }
    result = PyTuple_Pack(2, found, unsure);
done:
    slots_clear(c.slots);
    Py_XDECREF(found);
    Py_XDECREF(unsure);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"fast_body", (PyCFunction)(void (*)(void))fast_body, METH_FASTCALL,
     "fast_body(body, multiplier, now_ns, database, retention_policy, point_type, keys, typed,"
     " max_keys, max_key_length) -> (found, unsure) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kapacity._native.lineproto",
    "Line protocol's fast path (twin: kapacity.lineprotocol._parse._fast_lines).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit_lineproto(void)
{
    static const char refused[] = "\\\"\t\r\x0b\x0c\x1c\x1d\x1e\x1f";
    memset(not_plain, 0, sizeof(not_plain));
    for (int i = 0x80; i < 256; i++)
        not_plain[i] = 1;
    for (const char *r = refused; *r; r++)
        not_plain[(unsigned char)*r] = 1;
    not_plain[0] = 1;
    return PyModule_Create(&module_def);
}
