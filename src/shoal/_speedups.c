/* C versions of the two functions of shoal/protocol/binary.py that every binary pose passes through; see
 * shoal/speedups.py.
 *
 * Each does exactly what its Python twin does (the tests run both on the same inputs): pack_pose checks a pose
 * frame on arrival, packed_entry copies it into a tick entry. Both are byte work, where the interpreter spends
 * far more on dispatch than on the work. Code that mostly calls methods of Python objects is not here: CPython
 * 3.11's specialising interpreter calls them faster than the C API's generic calls do (measured: a tick
 * frame's writes to 25 sockets took 6.9 us from C against 5.8 us from Python).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- the binary layout (docs/protocol.md, "Binary frames"; shoal/protocol/binary.py) ---------------- */
#define POSE_LEFT 0x01
#define POSE_RIGHT 0x02
#define POSE_HAS_T 0x04
#define FULL_POSE_FLAGS (POSE_LEFT | POSE_RIGHT | POSE_HAS_T)
#define FULL_POSE_SIZE 49 /* tag, flags, t, compact head, head rotation, two compact hands and rotations */
#define HEAD_ROTATION_AT 19
#define LEFT_ROTATION_AT 31
#define RIGHT_ROTATION_AT 43
#define MAX_TIMESTAMP 1e15
#define QUAT_STEPS 16383
#define QUAT_NORM_LIMIT (2LL * QUAT_STEPS * QUAT_STEPS)
#define AGE_SCALE 100.0
#define AGE_LIMIT 2147483647.0

/* Set once by bind(): the Python objects the fast paths build or fall back to. */
static PyObject *packed_pose_type;     /* shoal.protocol.binary.PackedPose */
static PyObject *pack_pose_in_python;  /* shoal.protocol.binary.pack_pose: every other layout, and the errors */

static PyObject *str_frame, *str_t;

static int check_arguments(const char *name, Py_ssize_t nargs, Py_ssize_t expected) {
    if (nargs == expected) return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected, nargs);
    return 0;
}

static inline uint16_t read_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static inline double read_f64(const unsigned char *p) {
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--) bits = bits << 8 | p[i];
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline void write_u32(unsigned char *p, uint32_t value) {
    p[0] = (unsigned char)value;
    p[1] = (unsigned char)(value >> 8);
    p[2] = (unsigned char)(value >> 16);
    p[3] = (unsigned char)(value >> 24);
}

/* The square of the component a stored word holds, in steps; beyond the limit when it holds none. Bit 15 of
 * the first two words is half of the dropped component's index, so only the third word may not have it. */
static inline long long component_square(unsigned value) {
    if (value > 2 * QUAT_STEPS) return QUAT_NORM_LIMIT + 1;
    long long steps = (long long)value - QUAT_STEPS;
    return steps * steps;
}

static inline int is_unit_quaternion(const unsigned char *p) {
    return component_square(read_u16(p) & 0x7FFF) + component_square(read_u16(p + 2) & 0x7FFF) +
               component_square(read_u16(p + 4)) <=
           QUAT_NORM_LIMIT;
}

PyDoc_STRVAR(pack_pose_doc,
             "pack_pose(frame) -> PackedPose\n\n"
             "shoal.protocol.binary.pack_pose: the common layout checked here, any other passed to Python.");

static PyObject *pack_pose(PyObject *module, PyObject *frame) {
    if (packed_pose_type == NULL) { /* shoal.protocol.binary binds both on import */
        PyErr_SetString(PyExc_RuntimeError, "shoal._speedups.pack_pose before bind()");
        return NULL;
    }
    if (PyBytes_CheckExact(frame) && PyBytes_GET_SIZE(frame) == FULL_POSE_SIZE) {
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(frame);
        if (p[1] == FULL_POSE_FLAGS) {
            double t = read_f64(p + 2);
            if (t >= -MAX_TIMESTAMP && t <= MAX_TIMESTAMP && is_unit_quaternion(p + HEAD_ROTATION_AT) &&
                is_unit_quaternion(p + LEFT_ROTATION_AT) && is_unit_quaternion(p + RIGHT_ROTATION_AT)) {
                PyObject *stamp = PyFloat_FromDouble(t);
                if (stamp == NULL) return NULL;
                PyObject *args[2] = {frame, stamp};
                PyObject *packed = PyObject_Vectorcall(packed_pose_type, args, 2, NULL);
                Py_DECREF(stamp);
                return packed;
            }
        }
    }
    return PyObject_CallOneArg(pack_pose_in_python, frame); /* says what is wrong, or handles the layout */
}

PyDoc_STRVAR(packed_entry_doc,
             "packed_entry(member_id, packed, tick_t) -> bytes\n\n"
             "shoal.protocol.binary.packed_entry: a binary pose's tick entry, its body copied as it is.");

static PyObject *packed_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (!check_arguments("packed_entry", nargs, 3)) return NULL;
    unsigned long member_id = PyLong_AsUnsignedLong(args[0]);
    if (member_id == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    if (member_id > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_OverflowError, "member id does not fit in 32 bits");
        return NULL;
    }
    double tick_t = PyFloat_AsDouble(args[2]);
    if (tick_t == -1.0 && PyErr_Occurred()) return NULL;
    PyObject *frame = PyObject_GetAttr(args[1], str_frame);
    if (frame == NULL) return NULL;
    PyObject *t = PyObject_GetAttr(args[1], str_t);
    if (t == NULL) {
        Py_DECREF(frame);
        return NULL;
    }
    PyObject *entry = NULL;
    if (!PyBytes_Check(frame) || PyBytes_GET_SIZE(frame) < (t == Py_None ? 2 : 10)) {
        PyErr_SetString(PyExc_ValueError, "packed.frame is not a pose frame");
        goto done;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(frame);
    Py_ssize_t size = PyBytes_GET_SIZE(frame);
    unsigned char flags = p[1];
    int has_age = 0;
    int32_t age = 0;
    Py_ssize_t body_at = 2;
    if (t != Py_None) {
        double sent = PyFloat_AsDouble(t);
        if (sent == -1.0 && PyErr_Occurred()) goto done;
        double steps = floor((tick_t - sent) * AGE_SCALE + 0.5);
        body_at = 10;
        if (steps >= -AGE_LIMIT && steps <= AGE_LIMIT) { /* also refuses NaN */
            has_age = 1;
            age = (int32_t)steps;
        } else {
            flags &= (unsigned char)~POSE_HAS_T; /* t too far from the tick: left out */
        }
    }
    Py_ssize_t head = has_age ? 9 : 5, body = size - body_at;
    entry = PyBytes_FromStringAndSize(NULL, head + body);
    if (entry == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(entry);
    write_u32(out, (uint32_t)member_id);
    out[4] = flags;
    if (has_age) write_u32(out + 5, (uint32_t)age);
    memcpy(out + head, p + body_at, (size_t)body);
done:
    Py_DECREF(frame);
    Py_DECREF(t);
    return entry;
}

PyDoc_STRVAR(bind_doc, "bind(packed_pose_type, pack_pose_in_python): what pack_pose builds and falls back to.");

static PyObject *bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (!check_arguments("bind", nargs, 2)) return NULL;
    Py_XSETREF(packed_pose_type, Py_NewRef(args[0]));
    Py_XSETREF(pack_pose_in_python, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"pack_pose", pack_pose, METH_O, pack_pose_doc},
    {"packed_entry", (PyCFunction)(void (*)(void))packed_entry, METH_FASTCALL, packed_entry_doc},
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL, bind_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "shoal._speedups", "C versions of Shoal's per-pose functions (see shoal/speedups.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (str_frame == NULL && (str_frame = PyUnicode_InternFromString("frame")) == NULL) return NULL;
    if (str_t == NULL && (str_t = PyUnicode_InternFromString("t")) == NULL) return NULL;
    return PyModule_Create(&module_def);
}
