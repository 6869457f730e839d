/* C versions of the byte work of shoal/protocol/binary.py and shoal/protocol/joints.py; see shoal/speedups.py.
 *
 * Each does exactly what its Python twin does (the tests run both on the same inputs): pack_pose and pack_joints
 * check a pose or hand-joints frame on arrival, packed_entry copies a pose into a tick entry, and encode_body,
 * encode_hand and pack_quaternion quantise a pose, a hand's 25 joints and a rotation (smallest three) sent in
 * JSON for binary members. All are arithmetic and bytes, where the interpreter spends far more on dispatch than
 * on the work. The fast paths take the common input only (exact floats, compact positions) and hand everything
 * else, errors included, to the Python twin, so that the rules and the error messages live in one place. Code
 * that mostly calls methods of Python objects is not here: CPython 3.11's specialising interpreter calls them
 * faster than the C API's generic calls do (measured: a tick frame's writes to 25 sockets took 6.9 us from C
 * against 5.8 us from Python).
 *
 * The float arithmetic is Python's, operation for operation, in IEEE doubles, so the bytes are the same; the
 * build must not contract it into fused multiply-adds (setup.py passes -ffp-contract=off).
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
#define POSITION_SCALE 10000.0 /* head and wrist positions, and joints relative to their wrist: 0.1 mm steps */
#define HEAD_LIMIT 8388607.0   /* 2**23 - 1 steps: a compact (int24) head or wrist */
#define INT16_LIMIT 32767.0    /* 2**15 - 1 steps: a joint from its wrist, a compact hand from its head */
#define JOINTS_PER_HAND 25
#define JOINT_VALUES 7 /* x, y, z, qx, qy, qz, qw */
#define HAND_BYTES (9 + 6 + (JOINTS_PER_HAND - 1) * 12)
#define HAND_SCALE 20000.0 /* a pose's hands relative to its head: 0.05 mm steps */
#define POSE_BODY_MAX (9 + 6 + 2 * (6 + 6))
#define HAND_LEFT 0x01 /* the hand flags of a JOINTS frame; the wide ones (0x04, 0x08) go to Python */
#define HAND_RIGHT 0x02

/* Set by bind(): the Python objects the fast paths build or fall back to. */
static PyObject *packed_pose_type;          /* shoal.protocol.binary.PackedPose */
static PyObject *pack_pose_in_python;       /* binary.pack_pose: every other layout, and the errors */
static PyObject *pack_quaternion_in_python; /* binary.pack_quaternion: other sequences, and the errors */
static PyObject *encode_hand_in_python;     /* joints._encode_hand: wide wrists, other sequences, the errors */
static PyObject *encode_body_in_python;     /* binary.encode_body: wide positions, other objects, the errors */
static PyObject *packed_joints_type;        /* shoal.protocol.joints.PackedJoints */
static PyObject *pack_joints_in_python;     /* joints.pack_joints: wide wrists, and the errors */

static double quat_scale; /* QUAT_STEPS * sqrt(2.0), as binary.QUAT_SCALE */

static PyObject *str_frame, *str_t, *str_pos, *str_rot;

static int check_arguments(const char *name, Py_ssize_t nargs, Py_ssize_t expected) {
    if (nargs == expected) return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected, nargs);
    return 0;
}

/* Whether `twin` was bound (see bind): a fast path has nowhere to send what it does not take without it. */
static int bound(PyObject *twin, const char *name) {
    if (twin != NULL) return 1;
    PyErr_Format(PyExc_RuntimeError, "shoal._speedups.%s before bind()", name);
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

static inline void write_u16(unsigned char *p, unsigned value) {
    p[0] = (unsigned char)value;
    p[1] = (unsigned char)(value >> 8);
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
    if (!bound(packed_pose_type, "pack_pose") || !bound(pack_pose_in_python, "pack_pose")) return NULL;
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

/* ---- rotations and hands (shoal/protocol/binary.py pack_quaternion, shoal/protocol/joints.py _encode_hand) ---- */

/* The doubles of a list or tuple of exactly `count` exact floats; 0 for anything else. */
static int exact_floats(PyObject *sequence, Py_ssize_t count, double *out) {
    if (!(PyList_CheckExact(sequence) || PyTuple_CheckExact(sequence)) || PySequence_Fast_GET_SIZE(sequence) != count)
        return 0;
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyFloat_CheckExact(items[i])) return 0;
        out[i] = PyFloat_AS_DOUBLE(items[i]);
    }
    return 1;
}

/* The three stored words of a rotation (smallest three, as binary.pack_quaternion); 0 when Python must decide:
 * a zero, huge or non-finite quaternion (Python raises), or a component that rounds out of range. */
static int pack_rotation(const double *q, unsigned words[3]) {
    double x = q[0], y = q[1], z = q[2], w = q[3];
    if (!isfinite(x) || !isfinite(y) || !isfinite(z) || !isfinite(w)) return 0;
    double norm2 = x * x + y * y + z * z + w * w;
    if (fabs(norm2 - 1.0) > 1e-6) {
        if (!(norm2 > 1e-12) || !isfinite(norm2)) return 0;
        double norm = sqrt(norm2);
        x = x / norm, y = y / norm, z = z / norm, w = w / norm;
    }
    double ax = fabs(x), ay = fabs(y), az = fabs(z), aw = fabs(w), largest, a, b, c;
    unsigned index;
    if (ax >= ay && ax >= az && ax >= aw) {
        index = 0, largest = x, a = y, b = z, c = w;
    } else if (ay >= az && ay >= aw) {
        index = 1, largest = y, a = x, b = z, c = w;
    } else if (az >= aw) {
        index = 2, largest = z, a = x, b = y, c = w;
    } else {
        index = 3, largest = w, a = x, b = y, c = z;
    }
    if (largest < 0.0) a = -a, b = -b, c = -c;
    double na = floor(a * quat_scale + 0.5) + QUAT_STEPS, nb = floor(b * quat_scale + 0.5) + QUAT_STEPS,
           nc = floor(c * quat_scale + 0.5) + QUAT_STEPS;
    if (!(na >= 0 && na <= 2 * QUAT_STEPS && nb >= 0 && nb <= 2 * QUAT_STEPS && nc >= 0 && nc <= 2 * QUAT_STEPS))
        return 0;
    words[0] = (index >> 1) << 15 | (unsigned)na;
    words[1] = (index & 1) << 15 | (unsigned)nb;
    words[2] = (unsigned)nc;
    return 1;
}

PyDoc_STRVAR(pack_quaternion_doc,
             "pack_quaternion(rot) -> (int, int, int)\n\n"
             "shoal.protocol.binary.pack_quaternion: four floats packed here, anything else passed to Python.");

static PyObject *pack_quaternion(PyObject *module, PyObject *rot) {
    if (!bound(pack_quaternion_in_python, "pack_quaternion")) return NULL;
    double q[4];
    unsigned words[3];
    if (exact_floats(rot, 4, q) && pack_rotation(q, words))
        return Py_BuildValue("(III)", words[0], words[1], words[2]);
    return PyObject_CallOneArg(pack_quaternion_in_python, rot);
}

/* A head or wrist position as 3 x int24 of 0.1 mm steps at `out`, and in `base` as decoders will see it (the steps
 * over the scale); 0 when it is beyond the compact range (sent wide) or not finite. */
static int write_compact_position(const double *position, unsigned char *out, double *base) {
    for (int axis = 0; axis < 3; axis++) {
        double steps = floor(position[axis] * POSITION_SCALE + 0.5);
        if (!(steps >= -HEAD_LIMIT && steps <= HEAD_LIMIT)) return 0; /* also refuses NaN */
        uint32_t bits = (uint32_t)(int32_t)steps;
        write_u16(out + 3 * axis, bits & 0xFFFF);
        out[3 * axis + 2] = (unsigned char)(bits >> 16); /* the int24's high byte, two's complement */
        base[axis] = steps / POSITION_SCALE;
    }
    return 1;
}

/* A position relative to `base` as 3 x int16 steps of 1 / `scale` at `out`; 0 beyond the int16 range or not
 * finite. */
static int write_offset(const double *position, const double *base, double scale, unsigned char *out) {
    for (int axis = 0; axis < 3; axis++) {
        double steps = floor((position[axis] - base[axis]) * scale + 0.5);
        if (!(steps >= -INT16_LIMIT && steps <= INT16_LIMIT)) return 0; /* also refuses NaN */
        write_u16(out + 2 * axis, (uint16_t)(int16_t)steps);
    }
    return 1;
}

/* A rotation's three stored words at `out`; 0 when Python must decide (see pack_rotation). */
static int write_rotation(const double *q, unsigned char *out) {
    unsigned words[3];
    if (!pack_rotation(q, words)) return 0;
    for (int i = 0; i < 3; i++) write_u16(out + 2 * i, words[i]);
    return 1;
}

/* The 303 bytes of a hand with a compact wrist (joints._encode_hand); 0 when Python must decide. */
static int encode_compact_hand(PyObject *hand, unsigned char *out) {
    if (!(PyList_CheckExact(hand) || PyTuple_CheckExact(hand)) || PySequence_Fast_GET_SIZE(hand) != JOINTS_PER_HAND)
        return 0;
    PyObject **joints = PySequence_Fast_ITEMS(hand);
    double joint[JOINT_VALUES], base[3];
    if (!exact_floats(joints[0], JOINT_VALUES, joint) || !write_compact_position(joint, out, base) ||
        !write_rotation(joint + 3, out + 9))
        return 0;
    for (int index = 1; index < JOINTS_PER_HAND; index++) {
        unsigned char *at = out + 15 + (index - 1) * 12;
        if (!exact_floats(joints[index], JOINT_VALUES, joint) || !write_offset(joint, base, POSITION_SCALE, at) ||
            !write_rotation(joint + 3, at + 6))
            return 0;
    }
    return 1;
}

/* The position (3) and rotation (4) of a Transform-like object whose `pos` and `rot` are lists or tuples of exact
 * floats; 0 for anything else, or -1 with an exception when reading an attribute raised one. */
static int transform_of(PyObject *transform, double *out) {
    PyObject *pos = PyObject_GetAttr(transform, str_pos);
    if (pos == NULL) return -1;
    PyObject *rot = PyObject_GetAttr(transform, str_rot);
    if (rot == NULL) {
        Py_DECREF(pos);
        return -1;
    }
    int taken = exact_floats(pos, 3, out) && exact_floats(rot, 4, out + 3);
    Py_DECREF(pos);
    Py_DECREF(rot);
    return taken;
}

/* A pose body with a compact head and hands (binary.encode_body) into `out`, its flags in `flags`; its size, 0
 * when Python must decide, or -1 with an exception. */
static Py_ssize_t encode_compact_body(PyObject *const *parts, unsigned char *out, unsigned *flags) {
    double transform[JOINT_VALUES], base[3];
    int taken = transform_of(parts[0], transform);
    if (taken <= 0) return taken;
    if (!write_compact_position(transform, out, base) || !write_rotation(transform + 3, out + 9)) return 0;
    Py_ssize_t size = 15;
    *flags = 0;
    for (int side = 1; side <= 2; side++) {
        if (parts[side] == Py_None) continue;
        if ((taken = transform_of(parts[side], transform)) <= 0) return taken;
        if (!write_offset(transform, base, HAND_SCALE, out + size) || !write_rotation(transform + 3, out + size + 6))
            return 0;
        *flags |= side == 1 ? POSE_LEFT : POSE_RIGHT;
        size += 12;
    }
    return size;
}

PyDoc_STRVAR(encode_body_doc,
             "encode_body(head, left, right) -> (int, bytes)\n\n"
             "shoal.protocol.binary.encode_body: a compact head and hands of floats encoded here, anything else "
             "passed to Python.");

static PyObject *encode_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (!check_arguments("encode_body", nargs, 3) || !bound(encode_body_in_python, "encode_body")) return NULL;
    unsigned char body[POSE_BODY_MAX];
    unsigned flags;
    Py_ssize_t size = encode_compact_body(args, body, &flags);
    if (size < 0) return NULL;
    if (size > 0) return Py_BuildValue("(Iy#)", flags, (const char *)body, size);
    return PyObject_Vectorcall(encode_body_in_python, args, 3, NULL);
}

PyDoc_STRVAR(encode_hand_doc,
             "encode_hand(hand) -> (bool, bytes)\n\n"
             "shoal.protocol.joints._encode_hand: 25 joints of 7 floats with a compact wrist encoded here, "
             "anything else passed to Python.");

static PyObject *encode_hand(PyObject *module, PyObject *hand) {
    if (!bound(encode_hand_in_python, "encode_hand")) return NULL;
    unsigned char body[HAND_BYTES];
    if (encode_compact_hand(hand, body)) {
        PyObject *bytes = PyBytes_FromStringAndSize((const char *)body, HAND_BYTES);
        if (bytes == NULL) return NULL;
        return Py_BuildValue("(ON)", Py_False, bytes);
    }
    return PyObject_CallOneArg(encode_hand_in_python, hand);
}

PyDoc_STRVAR(pack_joints_doc,
             "pack_joints(frame) -> PackedJoints\n\n"
             "shoal.protocol.joints.pack_joints: compact hands checked here, any other frame passed to Python.");

static PyObject *pack_joints(PyObject *module, PyObject *frame) {
    if (!bound(packed_joints_type, "pack_joints") || !bound(pack_joints_in_python, "pack_joints")) return NULL;
    if (PyBytes_CheckExact(frame) && PyBytes_GET_SIZE(frame) >= 2) {
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(frame);
        unsigned flags = p[1];
        Py_ssize_t hands = (flags & HAND_LEFT ? 1 : 0) + (flags & HAND_RIGHT ? 1 : 0);
        if ((flags & ~(unsigned)(HAND_LEFT | HAND_RIGHT)) == 0 && PyBytes_GET_SIZE(frame) == 2 + hands * HAND_BYTES) {
            int unit = 1;
            for (const unsigned char *hand = p + 2; unit && hand < p + 2 + hands * HAND_BYTES; hand += HAND_BYTES) {
                unit = is_unit_quaternion(hand + 9); /* the wrist's, after its int24 position */
                for (int joint = 1; unit && joint < JOINTS_PER_HAND; joint++)
                    unit = is_unit_quaternion(hand + 15 + (joint - 1) * 12 + 6);
            }
            if (unit) return PyObject_CallOneArg(packed_joints_type, frame);
        }
    }
    return PyObject_CallOneArg(pack_joints_in_python, frame); /* says what is wrong, or handles wide wrists */
}

/* ---- binding ------------------------------------------------------------------------------------------------ */

PyDoc_STRVAR(bind_doc,
             "bind(*, packed_pose=, pack_pose=, pack_quaternion=, encode_body=, encode_hand=, packed_joints=, "
             "pack_joints=)\n\n"
             "What the fast paths build (PackedPose, PackedJoints) and the Python twins they pass the rest to; each "
             "module binds its own.");

static PyObject *bind(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"packed_pose", "pack_pose",     "pack_quaternion", "encode_body",
                            "encode_hand", "packed_joints", "pack_joints",     NULL};
    PyObject **slots[] = {&packed_pose_type,      &pack_pose_in_python,   &pack_quaternion_in_python,
                          &encode_body_in_python, &encode_hand_in_python, &packed_joints_type,
                          &pack_joints_in_python};
    PyObject *given[7] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOOOOO:bind", names, &given[0], &given[1], &given[2], &given[3],
                                     &given[4], &given[5], &given[6]))
        return NULL;
    for (int i = 0; i < 7; i++)
        if (given[i] != NULL) Py_XSETREF(*slots[i], Py_NewRef(given[i]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"pack_pose", pack_pose, METH_O, pack_pose_doc},
    {"packed_entry", (PyCFunction)(void (*)(void))packed_entry, METH_FASTCALL, packed_entry_doc},
    {"pack_quaternion", pack_quaternion, METH_O, pack_quaternion_doc},
    {"encode_body", (PyCFunction)(void (*)(void))encode_body, METH_FASTCALL, encode_body_doc},
    {"encode_hand", encode_hand, METH_O, encode_hand_doc},
    {"pack_joints", pack_joints, METH_O, pack_joints_doc},
    {"bind", (PyCFunction)(void (*)(void))bind, METH_VARARGS | METH_KEYWORDS, bind_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "shoal._speedups", "C versions of Shoal's per-pose functions (see shoal/speedups.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (str_frame == NULL && (str_frame = PyUnicode_InternFromString("frame")) == NULL) return NULL;
    if (str_t == NULL && (str_t = PyUnicode_InternFromString("t")) == NULL) return NULL;
    if (str_pos == NULL && (str_pos = PyUnicode_InternFromString("pos")) == NULL) return NULL;
    if (str_rot == NULL && (str_rot = PyUnicode_InternFromString("rot")) == NULL) return NULL;
    quat_scale = QUAT_STEPS * sqrt(2.0);
    return PyModule_Create(&module_def);
}
