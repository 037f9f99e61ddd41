/* store.h - the local model store and `pull`: models by name instead of path.
 *
 * A store is one directory (chosen by the caller; the library never reads
 * the environment) holding, per model, NAME.gguf and NAME.json (the
 * manifest: name, source, repository and file, sha256, size, architecture,
 * quant type, parameter count, date), NAME being the model name with every
 * byte outside [A-Za-z0-9._-] written %XX. A model is registered exactly
 * when its manifest exists; the manifest is written last, after the GGUF
 * file was verified (sha256) and checked with the model loader.
 *
 * Pulling downloads into NAME.gguf.partial (with NAME.partial-meta saying
 * what it is a part of), resumes with HTTP Range, restarts when the server
 * ignores ranges, and holds NAME.lock (flock) so two pulls of one model do
 * not interleave: the second waits, then finds the model registered.
 *
 * Does not hold: the environment lookups (EDGEAGENT_MODELS, XDG_DATA_HOME,
 * HF_TOKEN, HF_ENDPOINT: the CLI reads them and passes them down), progress
 * rendering (a callback), the server endpoints.
 */
#ifndef EDGEAGENT_STORE_H
#define EDGEAGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EA_STORE_NAME_MAX 256    /* model names, repository ids, file names */
#define EA_STORE_URL_MAX 2048    /* sources and URLs */
#define EA_STORE_PATH_MAX 4096
#define EA_STORE_MANIFEST_MAX ((size_t)1 << 20) /* bytes of one manifest file */

typedef struct ea_store ea_store;

struct ea_store_manifest {
    char name[EA_STORE_NAME_MAX];   /* what -m and rm take: "qwen2.5:0.5b" */
    char source[EA_STORE_URL_MAX];  /* as given to pull: "hf.co/ORG/REPO:Q4_K_M", URL */
    char repo[EA_STORE_NAME_MAX];   /* "ORG/REPO"; "" for a plain URL */
    char file[EA_STORE_NAME_MAX];   /* file in the repository, or the URL's last segment */
    char revision[EA_STORE_NAME_MAX];
    char url[EA_STORE_URL_MAX];     /* where the bytes were requested */
    char sha256[65];                /* lower-case hex */
    uint64_t size;
    char arch[32];                  /* general.architecture */
    char quant[32];                 /* "Q4_K_M" (general.file_type), else main weight type */
    uint64_t n_params;
    char date[32];                  /* ISO 8601 UTC of registration */
};

/* Opens (creating it and its parents when missing) the store at dir. */
ea_status ea_store_open(const char *dir, ea_store **out, struct ea_error *err);
void ea_store_close(ea_store *s); /* NULL-safe */
const char *ea_store_dir(const ea_store *s);

/* Every registered model, sorted by name; *items is owned by the caller
 * (ea_free). Unreadable manifests are skipped and counted in *n_bad (may be
 * NULL). */
ea_status ea_store_list(ea_store *s, struct ea_store_manifest **items, size_t *n,
                        size_t *n_bad, struct ea_error *err);
/* The manifest of name; EA_ENOTFOUND when no such model is registered. */
ea_status ea_store_get(ea_store *s, const char *name, struct ea_store_manifest *out,
                       struct ea_error *err);
/* Path of the GGUF file of a registered model into path[size]. */
ea_status ea_store_model_path(ea_store *s, const char *name, char *path, size_t size,
                              struct ea_error *err);
/* Unregisters name (manifest first, then the file) and drops any partial
 * download of it. EA_ENOTFOUND when there is nothing by that name. */
ea_status ea_store_remove(ea_store *s, const char *name, struct ea_error *err);

/* What -m takes: an existing file is used as it is; otherwise arg is looked
 * up as a store name (s may be NULL: no store). The error says both when
 * neither exists. */
ea_status ea_store_resolve(ea_store *s, const char *arg, char *path, size_t size,
                           struct ea_error *err);

/* Checks gguf_path with the model loader (tensors, architecture supported),
 * moves it into the store as name and writes its manifest: fields size,
 * sha256 (computed when empty), arch, quant, n_params and date are filled
 * here; name/source/repo/file/revision/url come from m. Replaces a model of
 * the same name. On failure nothing is registered and gguf_path is left. */
ea_status ea_store_register(ea_store *s, const char *gguf_path, struct ea_store_manifest *m,
                            struct ea_error *err);

/* Manifest <-> JSON. The string is owned by the caller (ea_free). Parsing
 * rejects missing or over-long fields with EA_EFORMAT. */
char *ea_store_manifest_json(const struct ea_store_manifest *m);
ea_status ea_store_manifest_parse(const char *json, size_t len, struct ea_store_manifest *out,
                                  struct ea_error *err);

/* ---- pull --------------------------------------------------------------- */

/* Built-in short names for edge models edgeagent runs, each mapped to the
 * Hugging Face repository of its instruct GGUF files. */
struct ea_store_catalog_entry {
    const char *name;  /* "qwen2.5:0.5b" */
    const char *repo;  /* "Qwen/Qwen2.5-0.5B-Instruct-GGUF" */
};
/* The i-th entry, NULL past the end. */
const struct ea_store_catalog_entry *ea_store_catalog_at(size_t i);

enum ea_pull_source_kind {
    EA_PULL_HF_REPO,   /* hf.co/ORG/REPO[:QUANT] and catalog names */
    EA_PULL_HF_FILE,   /* hf.co/ORG/REPO/FILE.gguf */
    EA_PULL_URL,       /* https://.../file.gguf (http:// too, for mirrors and tests) */
};

struct ea_pull_source {
    enum ea_pull_source_kind kind;
    char repo[EA_STORE_NAME_MAX];  /* ORG/REPO */
    char quant[32];                /* EA_PULL_HF_REPO: wanted quant ("Q4_K_M" by default) */
    char file[EA_STORE_NAME_MAX];  /* EA_PULL_HF_FILE / EA_PULL_URL: file name */
    char url[EA_STORE_URL_MAX];    /* EA_PULL_URL */
    char name[EA_STORE_NAME_MAX];  /* default store name */
};

/* Parses a pull source: "hf.co/ORG/REPO[:QUANT]" (also huggingface.co/),
 * "hf.co/ORG/REPO/FILE.gguf", "https://HOST/.../FILE.gguf", or a catalog
 * short name (optionally ":QUANT" after it). */
ea_status ea_pull_parse_source(const char *source, struct ea_pull_source *out,
                               struct ea_error *err);

/* From the Hugging Face file list (the JSON of /api/models/ORG/REPO?blobs=true):
 * the .gguf file whose name ends in quant (case-insensitive, after '-', '_'
 * or '.'), its size and LFS sha256. EA_ENOTFOUND / EA_EINVAL (ambiguous)
 * list the quant types the repository has. */
ea_status ea_pull_pick_file(const char *json, size_t len, const char *quant, const char *file,
                            char *picked, size_t picked_size, uint64_t *size,
                            char sha256[65], struct ea_error *err);

enum ea_pull_phase {
    EA_PULL_RESOLVING,   /* asking the file list */
    EA_PULL_DOWNLOADING, /* bytes arriving */
    EA_PULL_VERIFYING,   /* sha256 and model checks */
    EA_PULL_DONE,
};

struct ea_pull_progress {
    enum ea_pull_phase phase;
    const char *name;      /* store name */
    const char *file;      /* file being fetched */
    uint64_t done;         /* bytes of the file on disk */
    uint64_t total;        /* file size; 0 when unknown */
    uint64_t resumed_from; /* bytes already there when this transfer started */
    const char *note;      /* one-off notice ("server ignored Range: restarting"), or NULL */
};

struct ea_pull_params {
    const char *source;
    const char *name;      /* store name; NULL: the source's default name */
    const char *endpoint;  /* Hugging Face endpoint; NULL: https://huggingface.co */
    const char *token;     /* bearer token for the endpoint, or NULL */
    const char *revision;  /* NULL: "main" */
    int retries;           /* resumed attempts after a broken transfer, in this call */
    /* Called from the pulling thread; keep it short. */
    void (*progress)(void *ud, const struct ea_pull_progress *p);
    void *progress_ud;
    /* When *cancel becomes non-zero the transfer stops within a second, the
     * partial file stays for a later resume, and the call returns
     * EA_ECANCELLED. May be NULL. */
    volatile int *cancel;
};

/* Pulls a model into the store and registers it (see the file comment).
 * When a model of that name and sha256 is already registered nothing is
 * downloaded. On success *out (may be NULL) is its manifest. */
ea_status ea_store_pull(ea_store *s, const struct ea_pull_params *p,
                        struct ea_store_manifest *out, struct ea_error *err);

#ifdef __cplusplus
}
#endif
#endif
