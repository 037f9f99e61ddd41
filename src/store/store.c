/* store.c - the model store directory: names to files, manifests (jansson),
 * list / get / remove / resolve, registering a verified GGUF, the per-model
 * lock. Does not hold: downloading (pull.c), source parsing (source.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edgeagent/model.h"
#include "edgeagent/store.h"
#include "store/store_int.h"
#include "util/sha256.h"

#define MANIFEST_SUFFIX ".json"
#define PARTIAL_META_SUFFIX ".partial-meta" /* not ".json": no model name can clash */
#define HASH_CHUNK ((size_t)1 << 20) /* bytes read at a time when hashing a file */
#define LOCK_POLL_MS 100L             /* how often a waiting pull retries the lock */

/* ---- paths ----------------------------------------------------------------- */

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= EA_STORE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7F)
            return false;
    }
    return true;
}

static bool plain_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

ea_status ea__store_path(const ea_store *s, const char *name, const char *suffix, char *out,
                         size_t size, struct ea_error *err)
{
    if (!name_ok(name))
        return ea_error_set(err, EA_EINVAL,
                            "'%.80s' is not a model name (1-%d printable characters, no spaces)",
                            name ? name : "", EA_STORE_NAME_MAX - 1);
    size_t o = (size_t)snprintf(out, size, "%s/", s->dir);
    for (size_t i = 0; name[i] && o + 4 < size; i++) {
        unsigned char c = (unsigned char)name[i];
        /* a leading dot would hide the file and ".." would escape the dir */
        if (plain_char(c) && !(i == 0 && c == '.'))
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "%%%02X", c);
    }
    if (o + strlen(suffix) + 1 > size)
        return ea_error_set(err, EA_ETOOBIG, "store path for '%.80s' is too long", name);
    strcpy(out + o, suffix);
    return EA_OK;
}

/* ---- open -------------------------------------------------------------------- */

static ea_status mkdirs(const char *dir, struct ea_error *err)
{
    char p[EA_STORE_PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(p, 0755) && errno != EEXIST)
            return ea_error_set(err, EA_EIO, "creating %s: %s", p, strerror(errno));
        *q = '/';
    }
    if (mkdir(p, 0755) && errno != EEXIST)
        return ea_error_set(err, EA_EIO, "creating %s: %s", p, strerror(errno));
    struct stat st;
    if (stat(p, &st) || !S_ISDIR(st.st_mode))
        return ea_error_set(err, EA_EIO, "model store %s is not a directory", p);
    return EA_OK;
}

ea_status ea_store_open(const char *dir, ea_store **out, struct ea_error *err)
{
    *out = NULL;
    if (!dir || !*dir)
        return ea_error_set(err, EA_EINVAL, "no model store directory given");
    if (strlen(dir) + EA_STORE_NAME_MAX * 3 + 32 > EA_STORE_PATH_MAX)
        return ea_error_set(err, EA_ETOOBIG, "model store path is too long");
    ea_status st = mkdirs(dir, err);
    if (st)
        return st;
    ea_store *s = ea_calloc(1, sizeof *s);
    if (!s)
        return ea_error_set(err, EA_ENOMEM, "model store: out of memory");
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    size_t n = strlen(s->dir);
    while (n > 1 && s->dir[n - 1] == '/')
        s->dir[--n] = '\0';
    *out = s;
    return EA_OK;
}

void ea_store_close(ea_store *s) { ea_free(s); }

const char *ea_store_dir(const ea_store *s) { return s->dir; }

/* ---- manifests --------------------------------------------------------------- */

static ea_status copy_field(json_t *o, const char *key, char *dst, size_t cap, bool required,
                            struct ea_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        dst[0] = '\0';
        return required ? ea_error_set(err, EA_EFORMAT, "manifest: '%s' is missing", key) : EA_OK;
    }
    if (!json_is_string(v))
        return ea_error_set(err, EA_EFORMAT, "manifest: '%s' is not a string", key);
    size_t n = json_string_length(v);
    const char *str = json_string_value(v);
    if (n >= cap || memchr(str, '\0', n))
        return ea_error_set(err, EA_EFORMAT, "manifest: '%s' is too long or holds a NUL", key);
    memcpy(dst, str, n + 1);
    return EA_OK;
}

static ea_status copy_u64(json_t *o, const char *key, uint64_t *dst, struct ea_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || !json_is_integer(v) || json_integer_value(v) < 0)
        return ea_error_set(err, EA_EFORMAT, "manifest: '%s' is not a non-negative integer", key);
    *dst = (uint64_t)json_integer_value(v);
    return EA_OK;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

ea_status ea_store_manifest_parse(const char *json, size_t len, struct ea_store_manifest *m,
                                  struct ea_error *err)
{
    memset(m, 0, sizeof *m);
    json_error_t je;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return ea_error_set(err, EA_EFORMAT, "manifest: %s (line %d)", je.text, je.line);
    ea_status s = EA_OK;
    if (!json_is_object(o)) {
        s = ea_error_set(err, EA_EFORMAT, "manifest: not a JSON object");
        goto out;
    }
    if ((s = copy_field(o, "name", m->name, sizeof m->name, true, err)) ||
        (s = copy_field(o, "source", m->source, sizeof m->source, true, err)) ||
        (s = copy_field(o, "repo", m->repo, sizeof m->repo, false, err)) ||
        (s = copy_field(o, "file", m->file, sizeof m->file, false, err)) ||
        (s = copy_field(o, "revision", m->revision, sizeof m->revision, false, err)) ||
        (s = copy_field(o, "url", m->url, sizeof m->url, false, err)) ||
        (s = copy_field(o, "sha256", m->sha256, sizeof m->sha256, true, err)) ||
        (s = copy_field(o, "architecture", m->arch, sizeof m->arch, false, err)) ||
        (s = copy_field(o, "quant", m->quant, sizeof m->quant, false, err)) ||
        (s = copy_field(o, "date", m->date, sizeof m->date, false, err)) ||
        (s = copy_u64(o, "size", &m->size, err)) ||
        (s = copy_u64(o, "parameters", &m->n_params, err)))
        goto out;
    if (!name_ok(m->name)) {
        s = ea_error_set(err, EA_EFORMAT, "manifest: 'name' is not a model name");
        goto out;
    }
    if (!is_hex64(m->sha256))
        s = ea_error_set(err, EA_EFORMAT, "manifest: 'sha256' is not 64 lower-case hex digits");
out:
    json_decref(o);
    return s;
}

char *ea_store_manifest_json(const struct ea_store_manifest *m)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "source", json_string(m->source));
    json_object_set_new(o, "repo", json_string(m->repo));
    json_object_set_new(o, "file", json_string(m->file));
    json_object_set_new(o, "revision", json_string(m->revision));
    json_object_set_new(o, "url", json_string(m->url));
    json_object_set_new(o, "sha256", json_string(m->sha256));
    json_object_set_new(o, "size", json_integer((json_int_t)m->size));
    json_object_set_new(o, "architecture", json_string(m->arch));
    json_object_set_new(o, "quant", json_string(m->quant));
    json_object_set_new(o, "parameters", json_integer((json_int_t)m->n_params));
    json_object_set_new(o, "date", json_string(m->date));
    char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!txt)
        return NULL;
    char *r = ea_strdup(txt);
    free(txt);
    return r;
}

/* ---- file helpers ------------------------------------------------------------- */

ea_status ea__store_write_file(const char *path, const char *data, size_t len,
                               struct ea_error *err)
{
    char tmp[EA_STORE_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ea_error_set(err, EA_EIO, "creating %s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ea_error_set(err, EA_EIO, "writing %s: %s", tmp, strerror(e));
        }
        off += (size_t)w;
    }
    if (fsync(fd) || close(fd)) {
        int e = errno;
        unlink(tmp);
        return ea_error_set(err, EA_EIO, "writing %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return ea_error_set(err, EA_EIO, "renaming %s: %s", tmp, strerror(e));
    }
    return EA_OK;
}

static char *read_small(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = ea_malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > max;
    fclose(f);
    if (bad) {
        ea_free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

ea_status ea__store_file_sha256(const char *path, char hex[65], struct ea_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ea_error_set(err, EA_EIO, "%s: %s", path, strerror(errno));
    unsigned char *buf = ea_malloc(HASH_CHUNK);
    if (!buf) {
        close(fd);
        return ea_error_set(err, EA_ENOMEM, "hashing %s: out of memory", path);
    }
    struct ea_sha256 c;
    ea__sha256_init(&c);
    ea_status s = EA_OK;
    for (;;) {
        ssize_t r = read(fd, buf, HASH_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            s = ea_error_set(err, EA_EIO, "reading %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        ea__sha256_update(&c, buf, (size_t)r);
    }
    ea_free(buf);
    close(fd);
    if (!s) {
        unsigned char d[EA_SHA256_DIGEST];
        ea__sha256_final(&c, d);
        ea__sha256_hex(d, hex);
    }
    return s;
}

/* ---- lock ---------------------------------------------------------------------- */

ea_status ea__store_lock(const ea_store *s, const char *name, bool wait,
                         void (*waiting)(void *ud), void *ud, volatile int *cancel, int *fd,
                         struct ea_error *err)
{
    char path[EA_STORE_PATH_MAX];
    ea_status st = ea__store_path(s, name, ".lock", path, sizeof path, err);
    if (st)
        return st;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0)
        return ea_error_set(err, EA_EIO, "%s: %s", path, strerror(errno));
    if (flock(f, LOCK_EX | LOCK_NB) == 0) {
        *fd = f;
        return EA_OK;
    }
    if (errno != EWOULDBLOCK) {
        int e = errno;
        close(f);
        return ea_error_set(err, EA_EIO, "locking %s: %s", path, strerror(e));
    }
    if (!wait) {
        close(f);
        return ea_error_set(err, EA_EOVERLOADED, "another pull of '%s' is in progress", name);
    }
    if (waiting)
        waiting(ud);
    /* polled rather than blocking, so that a cancel set by a signal handler
     * in another thread than the one waiting is seen too */
    for (;;) {
        if (cancel && *cancel) {
            close(f);
            return ea_error_set(err, EA_ECANCELLED, "interrupted while waiting for another pull of '%.200s'", name);
        }
        if (flock(f, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(f);
            return ea_error_set(err, EA_EIO, "locking %s: %s", path, strerror(e));
        }
        struct timespec ts = {0, LOCK_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    *fd = f;
    return EA_OK;
}

void ea__store_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock; the lock file itself stays (unlinking races) */
}

/* ---- queries ------------------------------------------------------------------- */

ea_status ea_store_get(ea_store *s, const char *name, struct ea_store_manifest *out,
                       struct ea_error *err)
{
    char path[EA_STORE_PATH_MAX];
    ea_status st = ea__store_path(s, name, MANIFEST_SUFFIX, path, sizeof path, err);
    if (st)
        return st;
    size_t len;
    char *txt = read_small(path, EA_STORE_MANIFEST_MAX, &len);
    if (!txt) {
        if (errno == ENOENT)
            return ea_error_set(err, EA_ENOTFOUND, "no model '%.200s' in the store %s", name,
                                s->dir);
        return ea_error_set(err, EA_EIO, "reading %s: %s", path, strerror(errno));
    }
    st = ea_store_manifest_parse(txt, len, out, err);
    ea_free(txt);
    if (st)
        return ea_error_prefix(err, "%s", path);
    if (strcmp(out->name, name) != 0)
        return ea_error_set(err, EA_EFORMAT, "%s: manifest names '%.200s'", path, out->name);
    return EA_OK;
}

ea_status ea_store_model_path(ea_store *s, const char *name, char *path, size_t size,
                              struct ea_error *err)
{
    struct ea_store_manifest m;
    ea_status st = ea_store_get(s, name, &m, err);
    if (st)
        return st;
    if ((st = ea__store_path(s, name, ".gguf", path, size, err)))
        return st;
    struct stat sb;
    if (stat(path, &sb))
        return ea_error_set(err, EA_ENOTFOUND, "model '%.200s' is registered but %s is missing: %s",
                            name, path, strerror(errno));
    return EA_OK;
}

static int cmp_manifest(const void *a, const void *b)
{
    return strcmp(((const struct ea_store_manifest *)a)->name,
                  ((const struct ea_store_manifest *)b)->name);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

ea_status ea_store_list(ea_store *s, struct ea_store_manifest **items, size_t *n,
                        size_t *n_bad, struct ea_error *err)
{
    *items = NULL;
    *n = 0;
    if (n_bad)
        *n_bad = 0;
    DIR *d = opendir(s->dir);
    if (!d)
        return ea_error_set(err, EA_EIO, "%s: %s", s->dir, strerror(errno));
    struct ea_store_manifest *v = NULL;
    size_t cnt = 0, cap = 0;
    ea_status st = EA_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, MANIFEST_SUFFIX))
            continue;
        char path[EA_STORE_PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name) >= sizeof path)
            continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct ea_store_manifest *nv = ea_realloc(v, nc * sizeof *nv);
            if (!nv) {
                st = ea_error_set(err, EA_ENOMEM, "listing the store: out of memory");
                break;
            }
            v = nv;
            cap = nc;
        }
        size_t len;
        char *txt = read_small(path, EA_STORE_MANIFEST_MAX, &len);
        struct ea_error perr = {0};
        if (!txt || ea_store_manifest_parse(txt, len, &v[cnt], &perr)) {
            if (n_bad)
                (*n_bad)++;
        } else {
            cnt++;
        }
        ea_free(txt);
    }
    closedir(d);
    if (st) {
        ea_free(v);
        return st;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_manifest);
    *items = v;
    *n = cnt;
    return EA_OK;
}

ea_status ea_store_remove(ea_store *s, const char *name, struct ea_error *err)
{
    static const char *const suffixes[] = {MANIFEST_SUFFIX, ".gguf", ".gguf.partial",
                                           PARTIAL_META_SUFFIX};
    bool any = false;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[EA_STORE_PATH_MAX];
        ea_status st = ea__store_path(s, name, suffixes[i], path, sizeof path, err);
        if (st)
            return st;
        if (unlink(path) == 0)
            any = true;
        else if (errno != ENOENT)
            return ea_error_set(err, EA_EIO, "removing %s: %s", path, strerror(errno));
    }
    if (!any)
        return ea_error_set(err, EA_ENOTFOUND, "no model '%.200s' in the store %s", name, s->dir);
    return EA_OK;
}

ea_status ea_store_resolve(ea_store *s, const char *arg, char *path, size_t size,
                           struct ea_error *err)
{
    struct stat sb;
    if (!arg || !*arg)
        return ea_error_set(err, EA_EINVAL, "no model given");
    char copy[EA_STORE_PATH_MAX];
    if (strlen(arg) >= sizeof copy)
        return ea_error_set(err, EA_ETOOBIG, "model path is too long");
    strcpy(copy, arg);
    arg = copy; /* path may be arg's buffer */
    if (stat(arg, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        size_t n = strlen(arg);
        if (n >= size)
            return ea_error_set(err, EA_ETOOBIG, "model path is too long");
        memmove(path, arg, n + 1); /* arg may be path itself */
        return EA_OK;
    }
    if (s && name_ok(arg)) {
        struct ea_error e2 = {0};
        ea_status st = ea_store_model_path(s, arg, path, size, &e2);
        if (st == EA_OK)
            return EA_OK;
        if (st != EA_ENOTFOUND) {
            *err = e2;
            return st;
        }
        /* "hf.co/ORG/REPO:Q" names the model pulled as "ORG/REPO:Q" */
        const char *pre[] = {"hf.co/", "huggingface.co/", "https://huggingface.co/"};
        for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
            if (strncmp(arg, pre[i], strlen(pre[i])) == 0 &&
                ea_store_model_path(s, arg + strlen(pre[i]), path, size, &e2) == EA_OK)
                return EA_OK;
    }
    return ea_error_set(err, EA_ENOTFOUND,
                        "%.200s: no such file, and no model of that name in the store %s "
                        "('edgeagent list' shows the store, 'edgeagent pull' downloads)",
                        arg, s ? s->dir : "(none)");
}

/* ---- registering ---------------------------------------------------------------- */

static const char *quant_name(const ea_model *mod)
{
    uint64_t ft;
    if (ea_gguf_get_u64(ea_model_gguf(mod), "general.file_type", &ft, NULL) == EA_OK)
        for (unsigned i = 0; ea_ftype_at(i); i++)
            if (ea_ftype_at(i)->file_type == ft)
                return ea_ftype_at(i)->name;
    const struct ea_type_info *ti = ea_type_info(ea_model_get_info(mod)->file_type_major);
    return ti ? ti->name : "unknown";
}

ea_status ea_store_register(ea_store *s, const char *gguf_path, struct ea_store_manifest *m,
                            struct ea_error *err)
{
    char dst[EA_STORE_PATH_MAX], man[EA_STORE_PATH_MAX];
    ea_status st;
    if ((st = ea__store_path(s, m->name, ".gguf", dst, sizeof dst, err)) ||
        (st = ea__store_path(s, m->name, MANIFEST_SUFFIX, man, sizeof man, err)))
        return st;
    struct stat sb;
    if (stat(gguf_path, &sb))
        return ea_error_set(err, EA_EIO, "%s: %s", gguf_path, strerror(errno));
    if (!m->sha256[0] && (st = ea__store_file_sha256(gguf_path, m->sha256, err)))
        return st;

    /* the loader validates every tensor and rejects unsupported architectures */
    struct ea_model_load_params lp = {.n_threads = 1, .no_repack = true};
    ea_model *mod = NULL;
    if ((st = ea_model_load(gguf_path, &lp, &mod, err)))
        return ea_error_prefix(err, "not a model edgeagent can run");
    const struct ea_model_info *info = ea_model_get_info(mod);
    snprintf(m->arch, sizeof m->arch, "%s", info->arch);
    snprintf(m->quant, sizeof m->quant, "%s", quant_name(mod));
    m->n_params = info->n_params;
    ea_model_destroy(mod);
    m->size = (uint64_t)sb.st_size;
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", &tmv);

    char *txt = ea_store_manifest_json(m);
    if (!txt)
        return ea_error_set(err, EA_ENOMEM, "manifest: out of memory");
    /* replacing a model: unregister the old one before its file changes */
    if (unlink(man) && errno != ENOENT) {
        ea_free(txt);
        return ea_error_set(err, EA_EIO, "removing %s: %s", man, strerror(errno));
    }
    if (rename(gguf_path, dst)) {
        ea_free(txt);
        return ea_error_set(err, EA_EIO, "moving %s into the store: %s", gguf_path,
                            strerror(errno));
    }
    st = ea__store_write_file(man, txt, strlen(txt), err);
    ea_free(txt);
    return st;
}
