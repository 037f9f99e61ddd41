/* template_int.h - internals of the chat-template interpreter (template.h).
 *
 * Holds: the arena every compile and render allocates from, the token and AST
 * shapes, the runtime value model, environments, the render context and the
 * functions the template_*.c files share.
 * Does not hold: anything public (template.h). The interpreter depends on
 * util/ (and jansson for the JSON context) only: no tokenizer, no model.
 *
 * The value model mirrors @huggingface/jinja, which is what the renders must
 * match byte for byte:
 *   - numbers are IEEE doubles with an "integer" flag (IntegerValue versus
 *     FloatValue), so arithmetic, overflow and printing follow JavaScript;
 *   - strings are UTF-8 here but lengths, indexing and ordering follow
 *     JavaScript's UTF-16 code units;
 *   - arrays, objects and namespaces are mutable and shared by reference, and
 *     `==` between them compares identity, as JS does.
 * Every value lives in the render's arena and dies with it: no reference
 * counts, no leaks through cycles a template builds (ns.self = ns).
 */
#ifndef EDGEAGENT_TEMPLATE_INT_H
#define EDGEAGENT_TEMPLATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/template.h"
#include "util/buf.h"

/* Internal functions are linked as ea__tpl_<name> (STYLE.md: internal
 * non-static symbols carry ea__); the template_*.c files use the short
 * names. */
#define bi_filter              ea__tpl_bi_filter
#define bi_find_test           ea__tpl_bi_find_test
#define bi_globals             ea__tpl_bi_globals
#define bi_member              ea__tpl_bi_member
#define bi_namespace           ea__tpl_bi_namespace
#define bi_test                ea__tpl_bi_test
#define env_lookup             ea__tpl_env_lookup
#define env_new                ea__tpl_env_new
#define env_set                ea__tpl_env_set
#define ev_args                ea__tpl_ev_args
#define ev_block               ea__tpl_ev_block
#define ev_call_value          ea__tpl_ev_call_value
#define ev_capture             ea__tpl_ev_capture
#define ev_expr                ea__tpl_ev_expr
#define rt_buf                 ea__tpl_rt_buf
#define rt_buf_str             ea__tpl_rt_buf_str
#define rt_err                 ea__tpl_rt_err
#define rt_iter                ea__tpl_rt_iter
#define rt_oom                 ea__tpl_rt_oom
#define rt_scratch             ea__tpl_rt_scratch
#define rt_scratch_done        ea__tpl_rt_scratch_done
#define rt_scratch_release_all ea__tpl_rt_scratch_release_all
#define rt_str                 ea__tpl_rt_str
#define rt_strz                ea__tpl_rt_strz
#define ta_alloc               ea__tpl_ta_alloc
#define ta_init                ea__tpl_ta_init
#define ta_release             ea__tpl_ta_release
#define ta_zalloc              ea__tpl_ta_zalloc
#define tarr_new               ea__tpl_tarr_new
#define tarr_push              ea__tpl_tarr_push
#define tobj_find              ea__tpl_tobj_find
#define tobj_new               ea__tpl_tobj_new
#define tobj_set               ea__tpl_tobj_set
#define tpl_lex                ea__tpl_tpl_lex
#define tpl_op_name            ea__tpl_tpl_op_name
#define tpl_parse              ea__tpl_tpl_parse
#define ts_of                  ea__tpl_ts_of
#define ts_add                 ea__tpl_ts_add
#define ts_add_str             ea__tpl_ts_add_str
#define ts_wrote               ea__tpl_ts_wrote
#define ts_cut                 ea__tpl_ts_cut
#define ts_slice               ea__tpl_ts_slice
#define rt_str_sub             ea__tpl_rt_str_sub
#define rt_str_as_data         ea__tpl_rt_str_as_data
#define rt_str_data            ea__tpl_rt_str_data
#define tv_has_data            ea__tpl_tv_has_data
#define ts_builtin_result      ea__tpl_ts_builtin_result
#define tstr_cat               ea__tpl_tstr_cat
#define tstr_empty             ea__tpl_tstr_empty
#define tstr_hash              ea__tpl_tstr_hash
#define tstr_new               ea__tpl_tstr_new
#define tv_array               ea__tpl_tv_array
#define tv_compare             ea__tpl_tv_compare
#define tv_from_json           ea__tpl_tv_from_json
#define tv_func                ea__tpl_tv_func
#define tv_js_string           ea__tpl_tv_js_string
#define tv_loose_eq            ea__tpl_tv_loose_eq
#define tv_object              ea__tpl_tv_object
#define tv_same_value_zero     ea__tpl_tv_same_value_zero
#define tv_strict_eq           ea__tpl_tv_strict_eq
#define tv_to_json             ea__tpl_tv_to_json
#define tv_to_string           ea__tpl_tv_to_string
#define tv_truthy              ea__tpl_tv_truthy
#define tv_type_name           ea__tpl_tv_type_name
#define tx_cmp_utf16           ea__tpl_tx_cmp_utf16
#define tx_find                ea__tpl_tx_find
#define tx_float               ea__tpl_tx_float
#define tx_json_str            ea__tpl_tx_json_str
#define tx_lower               ea__tpl_tx_lower
#define tx_num                 ea__tpl_tx_num
#define tx_parse_float         ea__tpl_tx_parse_float
#define tx_parse_int           ea__tpl_tx_parse_int
#define tx_to_number           ea__tpl_tx_to_number
#define tx_sanitize_utf8 ea__tpl_tx_sanitize_utf8
#define tx_trim                ea__tpl_tx_trim
#define tx_upper               ea__tpl_tx_upper
#define tx_utf16_at            ea__tpl_tx_utf16_at
#define tx_utf16_len           ea__tpl_tx_utf16_len
#define tx_ws_at               ea__tpl_tx_ws_at
#define tx_ws_before           ea__tpl_tx_ws_before

/* ---- arena ------------------------------------------------------------- */

/* Bump allocator in chunks; frees everything at once. `max` caps the bytes
 * it hands out; past it allocation fails and `capped` says why. */
struct ta_chunk;
struct tarena {
    struct ta_chunk *head;
    size_t used, max;
    bool capped;
    /* Birth number of the next string (runtime arenas count from 1; 0 =
     * compile-time strings, which are never "fresh"; see tstr.born). */
    uint64_t serial;
};
void ta_init(struct tarena *a, size_t max);
void ta_release(struct tarena *a);
void *ta_alloc(struct tarena *a, size_t n);  /* 16-aligned, uninitialised */
void *ta_zalloc(struct tarena *a, size_t n); /* zeroed */

/* memcpy/memmove that accept NULL pointers when n is 0 (C does not). */
static inline void t_copy(void *dst, const void *src, size_t n)
{
    if (n)
        __builtin_memmove(dst, src, n);
}

/* ---- strings ----------------------------------------------------------- */

/* Provenance of a string's bytes (template_taint.c): the ranges that come
 * from message data, sorted, disjoint, non-empty, inside the string. */
struct trange {
    size_t off, len;
};
struct tdata {
    size_t n;
    const struct trange *r;
};

/* Immutable byte string, NUL-terminated for convenience (may hold NULs).
 * data is NULL for text of the template's own; born orders the strings a
 * render made (0 for the template's literals), so a built-in's fresh
 * results can be told from values it passed through. */
struct tstr {
    size_t len;
    const struct tdata *data;
    uint64_t born;
    char s[];
};
const struct tstr *tstr_new(struct tarena *a, const char *s, size_t n);
const struct tstr *tstr_cat(struct tarena *a, const char *x, size_t nx, const char *y, size_t ny);
extern const struct tstr tstr_empty;
uint32_t tstr_hash(const char *s, size_t n);
static inline bool tstr_eq(const struct tstr *a, const char *s, size_t n)
{
    return a->len == n && (n == 0 || __builtin_memcmp(a->s, s, n) == 0);
}
static inline bool tstr_eqz(const struct tstr *a, const char *z)
{
    return tstr_eq(a, z, __builtin_strlen(z));
}

/* ---- JavaScript string semantics (template_text.c) --------------------- */

/* Length of the JS whitespace character (\s: ASCII space set, NBSP, U+1680,
 * U+2000-200A, U+2028/9, U+202F, U+205F, U+3000, U+FEFF) at s[0..n), or 0. */
size_t tx_ws_at(const char *s, size_t n);
/* Length of the JS whitespace character that ends at s[n-1], or 0. */
size_t tx_ws_before(const char *s, size_t n);
/* String.prototype.trim / trimStart / trimEnd: offsets of the kept part. */
void tx_trim(const char *s, size_t n, size_t *start, size_t *end, bool left, bool right);
/* Number of UTF-16 code units (String.prototype.length). */
size_t tx_utf16_len(const char *s, size_t n);
/* Byte range of the code unit at UTF-16 index i (0 <= i < length): the whole
 * character; *lone is set when i falls inside a surrogate pair (JS would give
 * a lone surrogate, which Node writes as U+FFFD). */
void tx_utf16_at(const char *s, size_t n, size_t i, size_t *off, size_t *len, bool *lone);
/* Compares like JS `<` on strings (UTF-16 code unit order): <0, 0, >0. */
int tx_cmp_utf16(const char *a, size_t na, const char *b, size_t nb);
/* toUpperCase / toLowerCase into buf (ASCII, Latin-1, Latin Extended-A,
 * Greek, Cyrillic; other characters are copied unchanged). */
ea_status tx_upper(struct ea_buf *buf, const char *s, size_t n);
ea_status tx_lower(struct ea_buf *buf, const char *s, size_t n);
/* Appends JSON.stringify(s): "\"", "\\", \b \f \n \r \t, other controls as
 * \u00xx; with ascii, every code unit >= 0x7f as \uxxxx (surrogates split). */
ea_status tx_json_str(struct ea_buf *buf, const char *s, size_t n, bool ascii);
/* Number -> string as JS String(x) (shortest round trip, exponent forms). */
size_t tx_num(double x, char out[40]);
/* FloatValue.toString: "-0.0", "3.0" for integral values, else String(x). */
size_t tx_float(double x, char out[400]);
/* JS parseInt(s, 10) / parseFloat(s) / Number(s): NaN when nothing parses. */
double tx_parse_int(const char *s, size_t n);
double tx_parse_float(const char *s, size_t n);
double tx_to_number(const char *s, size_t n);
/* Decodes s as Node decodes a UTF-8 file: each maximal ill-formed
 * subsequence becomes U+FFFD. *out is NULL when s is valid (use s as is),
 * else a new buffer (free with ea_free) of *out_len bytes. */
ea_status tx_sanitize_utf8(const char *s, size_t n, char **out, size_t *out_len);
/* First occurrence of needle in hay (memmem, which C11 lacks); NULL if none.
 * An empty needle is found at hay. */
const char *tx_find(const char *hay, size_t hn, const char *needle, size_t nn);
/* \w for one byte (ASCII letters, digits, underscore). */
static inline bool tx_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* ---- tokens ------------------------------------------------------------ */

enum tok_type {
    TK_TEXT,
    TK_NUMBER,
    TK_STRING,
    TK_IDENT,
    TK_EQUALS,
    TK_LPAREN,
    TK_RPAREN,
    TK_OPEN_STMT,  /* {% */
    TK_CLOSE_STMT, /* %} */
    TK_OPEN_EXPR,  /* {{ */
    TK_CLOSE_EXPR, /* }} */
    TK_LBRACKET,
    TK_RBRACKET,
    TK_LBRACE,
    TK_RBRACE,
    TK_COMMA,
    TK_DOT,
    TK_COLON,
    TK_PIPE,
    TK_ADD,     /* + - ~ */
    TK_MUL,     /* * / // % */
    TK_POW,     /* ** */
    TK_CMP,     /* < > <= >= == != */
    TK_UNARY,   /* + or - that the lexer saw in prefix position */
    TK_COMMENT,
    TK_EOF
};

struct token {
    uint8_t type;
    int line;
    const struct tstr *val; /* text, literal, identifier or operator */
};

/* Preprocesses (trailing newline, lstrip_blocks, trim_blocks, the
 * transformers `generation` tag) and splits src into tokens exactly like the
 * reference lexer. Strings are allocated in a. */
ea_status tpl_lex(struct tarena *a, const char *src, size_t len, struct token **out, size_t *n,
                  struct ea_error *err);

/* ---- AST --------------------------------------------------------------- */

enum node_kind {
    N_STR,       /* str: text or string literal */
    N_INT,       /* num */
    N_FLOAT,     /* num */
    N_IDENT,     /* str, hash */
    N_ARRAY,     /* list */
    N_TUPLE,     /* list */
    N_OBJECT,    /* list: key, value, key, value, ... */
    N_MEMBER,    /* a = object, b = property; flags & NF_COMPUTED */
    N_CALL,      /* a = callee, list = args */
    N_BINARY,    /* op, a, b */
    N_UNARY,     /* op, a */
    N_FILTER,    /* a = operand, str = filter name, list = args, flags & NF_CALL */
    N_TEST,      /* a = operand, str = test name, list = args; NF_NEGATE, NF_CALL */
    N_SELECT,    /* a = value, b = condition (`x if c` without else) */
    N_TERNARY,   /* a = condition, b = if true, c = if false */
    N_SLICE,     /* a = start, b = stop, c = step (each may be NULL) */
    N_KWARG,     /* str = name, a = value */
    N_SPREAD,    /* a: *expr */
    N_KWSPREAD,  /* a: **expr */
    N_IF,        /* a = test, list = body, list2 = else (an elif is one N_IF) */
    N_FOR,       /* a = target, b = iterable, c = select test, list = body, list2 = else */
    N_SET,       /* a = target, b = value or NULL (then list = block body) */
    N_MACRO,     /* str = name, list = body, list2 = parameters, flags: NF_KWARGS/NF_VARARGS */
    N_CALLSTMT,  /* a = callee, list = body, list2 = call args, list3 = caller params */
    N_FILTERSTMT,/* a = N_FILTER with a NULL operand, list = body */
    N_BREAK,
    N_CONTINUE,
    N_COMMENT
};

enum node_op {
    OP_NONE,
    OP_AND,
    OP_OR,
    OP_NOT,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_GT,
    OP_LE,
    OP_GE,
    OP_IN,
    OP_NOTIN,
    OP_ADD,
    OP_SUB,
    OP_CONCAT,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_NEG,
    OP_POS
};

#define NF_COMPUTED 1u
#define NF_CALL 2u
#define NF_NEGATE 4u
#define NF_KWARGS 8u  /* macro body reads `kwargs` before declaring it */
#define NF_VARARGS 16u

struct node {
    uint8_t kind, op, flags;
    int line;
    uint32_t hash;
    const struct tstr *str;
    double num;
    struct node *a, *b, *c;
    struct node **list, **list2, **list3;
    size_t nlist, nlist2, nlist3;
};

struct ea_template {
    struct tarena ar; /* tokens' strings and the AST */
    struct node **body;
    size_t nbody;
};

/* Parses tokens into t->body (allocated in t->ar). */
ea_status tpl_parse(struct ea_template *t, const struct token *toks, size_t n, struct ea_error *err);
const char *tpl_op_name(int op);

/* ---- runtime values ---------------------------------------------------- */

enum tv_kind {
    TV_UNDEF,    /* UndefinedValue */
    TV_NULL,     /* NullValue */
    TV_BOOL,     /* BooleanValue */
    TV_INT,      /* IntegerValue (a double holding an integer, as in JS) */
    TV_FLOAT,    /* FloatValue */
    TV_STR,      /* StringValue */
    TV_ARRAY,    /* ArrayValue */
    TV_TUPLE,    /* TupleValue: an ArrayValue whose type name differs */
    TV_OBJECT,   /* ObjectValue (ordered map) */
    TV_KWARGS,   /* KeywordArgumentsValue: an ObjectValue for call kwargs */
    TV_NS,       /* NamespaceValue: attribute bag without mapping behaviour */
    TV_FUNC,     /* FunctionValue */
    TV_JSUNDEF   /* a bare JS `undefined` (e.g. []|first); most uses fail */
};

struct tarr;
struct tobj;
struct tfunc;
struct tv {
    uint8_t k;
    union {
        bool b;
        double n;
        const struct tstr *s;
        struct tarr *a;
        struct tobj *o;
        struct tfunc *f;
    } u;
};

struct tarr {
    size_t n, cap;
    struct tv *v;
    uint32_t visit; /* walk that last saw it (template_taint.c), so cycles are walked once */
};
struct tobj_ent {
    const struct tstr *k;
    struct tv v;
};
struct tobj {
    size_t n, cap;
    struct tobj_ent *e;
    /* A for loop's `loop` object is reused by the next iteration unless the
     * template took a reference to it (TOBJ_ESCAPED). */
    uint8_t flags;
    uint32_t visit; /* as tarr.visit */
};
#define TOBJ_LOOP 1u
#define TOBJ_ESCAPED 2u

struct rctx;
struct tenv;
/* A built-in: args[0..n) as the reference passes them (a trailing TV_KWARGS
 * holds keyword arguments). */
typedef int (*tbuiltin_fn)(struct rctx *r, const struct tfunc *f, struct tv *args, size_t n, struct tv *out);

enum tfunc_kind { TF_BUILTIN, TF_MACRO, TF_CALLER };
struct tfunc {
    uint8_t kind;
    tbuiltin_fn fn;          /* TF_BUILTIN */
    struct tv self;          /* receiver of a bound method */
    const char *name;        /* for messages */
    const struct node *node; /* TF_MACRO: N_MACRO; TF_CALLER: N_CALLSTMT */
    struct tenv *env;        /* TF_CALLER: where the call block was */
};

static inline struct tv tv_undef(void) { return (struct tv){.k = TV_UNDEF}; }
static inline struct tv tv_null(void) { return (struct tv){.k = TV_NULL}; }
static inline struct tv tv_bool(bool b) { return (struct tv){.k = TV_BOOL, .u.b = b}; }
static inline struct tv tv_int(double n) { return (struct tv){.k = TV_INT, .u.n = n}; }
static inline struct tv tv_float(double n) { return (struct tv){.k = TV_FLOAT, .u.n = n}; }
static inline struct tv tv_str(const struct tstr *s) { return (struct tv){.k = TV_STR, .u.s = s}; }
static inline bool tv_is_array(struct tv v) { return v.k == TV_ARRAY || v.k == TV_TUPLE; }  /* instanceof ArrayValue */
static inline bool tv_is_object(struct tv v) { return v.k == TV_OBJECT || v.k == TV_KWARGS; } /* instanceof ObjectValue */
static inline bool tv_is_num(struct tv v) { return v.k == TV_INT || v.k == TV_FLOAT; }
static inline bool tv_is_attr(struct tv v) { return tv_is_object(v) || v.k == TV_NS; }

/* "IntegerValue", "ArrayValue", ... as the reference names the type. */
const char *tv_type_name(struct tv v);

/* ---- environments ------------------------------------------------------ */

struct tenv_ent {
    const struct tstr *name;
    uint32_t hash;
    struct tv v;
};
struct tenv {
    struct tenv *parent;
    size_t n, cap;
    struct tenv_ent *e;
};

/* ---- render context ---------------------------------------------------- */

/* Internal results of evaluation: 0 = ok, an ea_status on error, or a loop
 * control signal unwinding to the nearest for loop. */
#define TR_OK 0
#define TR_BREAK 1001
#define TR_CONTINUE 1002

/* A growing list of data ranges for a buffer being written (sorted). */
struct tspans {
    struct trange *v;
    size_t n, cap;
};

struct rctx {
    struct tarena ar;
    struct ea_buf out; /* rendered text; captures render here and cut back */
    /* Provenance (template_taint.c), only when track: the data ranges of
     * out, and whether tv_from_json is reading data (else trusted values). */
    bool track, json_data;
    uint32_t walk; /* number of the current structure walk (tarr/tobj.visit) */
    struct tspans out_sp;
    const char *const *trusted_roles; /* role names that are template text */
    struct ea_error *err;
    unsigned depth, max_depth;
    uint64_t steps, max_steps, iters, max_iters;
    struct tm now;
    struct tenv *global;
    struct tfunc *namespace_fn; /* every scope's own `namespace` */
    int cur_line;               /* line of the call a built-in runs for */
    struct rscratch *scratch_free, *scratch_all; /* pooled ea_bufs */
};

/* Records a runtime error (message as the reference words it) at a template
 * line (0 = the line of the current built-in call) and returns EA_EINVAL.
 * Keeps the first error. */
int rt_err(struct rctx *r, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* EA_ENOMEM, or EA_ETOOBIG when the memory cap is what failed. */
int rt_oom(struct rctx *r);
/* Maps an ea_buf failure (ETOOBIG = output cap) to a recorded error. */
int rt_buf(struct rctx *r, ea_status s);
/* Counts one loop iteration / range element against max_iters. */
int rt_iter(struct rctx *r, int line);

/* values: constructors, conversions (template_value.c) */
struct tarr *tarr_new(struct rctx *r, size_t cap);
int tarr_push(struct rctx *r, struct tarr *a, struct tv v);
struct tobj *tobj_new(struct rctx *r, size_t cap);
struct tobj_ent *tobj_find(const struct tobj *o, const char *k, size_t n);
int tobj_set(struct rctx *r, struct tobj *o, const struct tstr *k, struct tv v);
struct tv tv_array(struct tarr *a);
struct tv tv_object(struct tobj *o, int kind);
struct tv tv_func(struct rctx *r, tbuiltin_fn fn, struct tv self, const char *name);
const struct tstr *rt_str(struct rctx *r, const char *s, size_t n);
const struct tstr *rt_strz(struct rctx *r, const char *s);
const struct tstr *rt_buf_str(struct rctx *r, struct ea_buf *b); /* copies b */

/* __bool__ */
bool tv_truthy(struct tv v);
/* RuntimeValue.toString() appended to b. */
int tv_to_string(struct rctx *r, struct ea_buf *b, struct tv v, int line);
/* String(value.value): what `~`, `+` and join produce for an operand. */
int tv_js_string(struct rctx *r, struct ea_buf *b, struct tv v, int line);
/* JS `a.value == b.value` (may fail: comparing a list with a string prints
 * the list) and `a.value === b.value`. */
int tv_loose_eq(struct rctx *r, struct tv a, struct tv b, bool *eq, int line);
bool tv_strict_eq(struct tv a, struct tv b);
/* SameValueZero, for |unique (a JS Set). */
bool tv_same_value_zero(struct tv a, struct tv b);
/* compareRuntimeValues: sets *res to -1/0/1 or records an error. */
int tv_compare(struct rctx *r, struct tv a, struct tv b, bool case_sensitive, int *res, int line);

struct json_opts {
    int indent; /* 0 = none */
    bool ascii, sort_keys, undef_null;
    const struct tstr *item_sep, *key_sep; /* NULL = defaults */
};
/* toJSON of the reference appended to b. */
int tv_to_json(struct rctx *r, struct ea_buf *b, struct tv v, const struct json_opts *o, int depth, int line);

/* Converts a jansson value (json_t *) to a runtime value, with JS
 * Object.entries key order (integer-like keys first, ascending). */
int tv_from_json(struct rctx *r, const void *json, struct tv *out);

/* A scratch buffer for building a string, returned to a small pool. */
struct ea_buf *rt_scratch(struct rctx *r);
void rt_scratch_done(struct rctx *r, struct ea_buf *b);
/* Frees every pooled buffer (end of a render). */
void rt_scratch_release_all(struct rctx *r);

/* ---- provenance (template_taint.c) -------------------------------------- */

/* The spans of a buffer being written: r->out's or a scratch buffer's. */
struct tspans *ts_of(struct rctx *r, struct ea_buf *b);
/* Appends [off, off+len) as data (merging with the last range). */
int ts_add(struct rctx *r, struct tspans *sp, size_t off, size_t len);
/* Appends the data ranges of s[from, from+n), placed at `at`. */
int ts_add_str(struct rctx *r, struct tspans *sp, size_t at, const struct tstr *s, size_t from, size_t n);
/* v was just written as b[at, b->len): records its data. */
int ts_wrote(struct rctx *r, struct ea_buf *b, size_t at, struct tv v);
/* Drops the ranges at or past len (the buffer was cut back). */
void ts_cut(struct tspans *sp, size_t len);
/* The data ranges of sp inside [from, from+n), shifted to start at 0, as a
 * tdata for a new string (NULL when none). */
int ts_slice(struct rctx *r, const struct tspans *sp, size_t from, size_t n, const struct tdata **out);
/* s[off, off+n) as a new string keeping its provenance. */
const struct tstr *rt_str_sub(struct rctx *r, const struct tstr *s, size_t off, size_t n);
/* Whether v holds data anywhere (lists and maps deeply; a structure deeper
 * than the walk's limit counts as data). */
bool tv_has_data(struct rctx *r, struct tv v);
/* A new string, all of it data. */
const struct tstr *rt_str_data(struct rctx *r, const char *s, size_t n);
/* Marks s (all of it) as data when it is not already: returns s or a copy. */
const struct tstr *rt_str_as_data(struct rctx *r, const struct tstr *s);
/* After a built-in ran (its strings born at or after `mark`): unless it keeps
 * provenance itself (precise), every fresh string in *out becomes data when
 * any input holds data. in[0..n) are its operand/receiver and arguments. */
int ts_builtin_result(struct rctx *r, uint64_t mark, bool precise, const struct tv *in, size_t n, struct tv *out);

/* ---- evaluation (template_eval.c) --------------------------------------- */

struct tenv *env_new(struct rctx *r, struct tenv *parent);
int env_set(struct rctx *r, struct tenv *e, const struct tstr *name, uint32_t hash, struct tv v);
struct tv env_lookup(struct rctx *r, struct tenv *e, const char *name, size_t n, uint32_t hash);

int ev_expr(struct rctx *r, const struct node *n, struct tenv *env, struct tv *out);
int ev_block(struct rctx *r, struct node *const *body, size_t n, struct tenv *env);
/* evaluateArguments: positional values and a kwargs object (NULL if none). */
int ev_args(struct rctx *r, struct node *const *args, size_t n, struct tenv *env, struct tarr **pos,
            struct tobj **kw);
/* Calls any function value with args as the reference passes them. */
int ev_call_value(struct rctx *r, struct tv fn, struct tv *args, size_t n, struct tenv *env, struct tv *out,
                  int line);
/* Renders body into a string value (set blocks, macros, filter blocks). */
int ev_capture(struct rctx *r, struct node *const *body, size_t n, struct tenv *env, struct tv *out);

/* ---- built-ins (template_builtins.c) ------------------------------------ */

/* Applies filter node f (N_FILTER) to operand. */
int bi_filter(struct rctx *r, struct tv operand, const struct node *f, struct tenv *env, struct tv *out);
/* `operand is [not] name(args)` */
int bi_test(struct rctx *r, struct tv operand, const struct node *t, struct tenv *env, bool *out);
/* Looks a test up by name (for selectattr/reject): returns false when unknown. */
typedef int (*ttest_fn)(struct rctx *r, struct tv a, struct tv *args, size_t n, bool *out, int line);
ttest_fn bi_find_test(const char *name, size_t n, bool reference_only);
/* obj.name for the built-in members of strings, arrays, objects. */
bool bi_member(struct rctx *r, struct tv obj, const struct tstr *name, struct tv *out);
/* Declares the globals (true, none, raise_exception, range, ...). */
int bi_globals(struct rctx *r, struct tenv *g);
int bi_namespace(struct rctx *r, const struct tfunc *f, struct tv *args, size_t n, struct tv *out);

#endif
