/* privacy.h - the privacy guard's engine: detection of personal data and
 * secrets in text, redaction into typed numbered placeholders with a
 * per-request map, and the streaming restorer that puts the values back into
 * an answer (docs/PRIVACY.md).
 *
 * Holds: the detector (built once from the configuration's `privacy:` tree,
 * immutable afterwards and safe to share between threads), entity lists,
 * the per-request placeholder map, redaction of one or many texts, and the
 * restorer (plain text or JSON string content).
 * Does not hold: the policies (local_only / redact / allow) or where a
 * request goes: the router applies them with these calls. Reads no
 * environment and logs nothing (no text, no value ever leaves this module
 * other than through the caller's buffers).
 *
 * Failing closed: every call that can fail returns an ea_status; a request
 * whose detection or redaction failed must be treated as local_only.
 */
#ifndef EDGEAGENT_PRIVACY_H
#define EDGEAGENT_PRIVACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ea_config_node; /* router.h: the `privacy:` section as parsed */

/* The built-in types, with fixed names (ea_privacy_type_name). Types from
 * the configuration's `custom:` list follow, numbered from
 * EA_PII_BUILTIN_COUNT in file order. */
enum ea_pii_type {
    EA_PII_EMAIL,
    EA_PII_PHONE,
    EA_PII_CREDIT_CARD,
    EA_PII_IBAN,
    EA_PII_US_SSN,
    EA_PII_IP_ADDRESS,
    EA_PII_MAC_ADDRESS,
    EA_PII_DATE_OF_BIRTH,
    EA_PII_URL_CREDENTIALS,
    EA_PII_SECRET,
    EA_PII_PERSON,
    EA_PII_BUILTIN_COUNT
};

/* Caps. */
#define EA_PRIVACY_MAX_TYPES 64             /* built-in + custom */
#define EA_PRIVACY_MAX_TYPE_NAME 32         /* [A-Z][A-Z0-9_]*, bytes */
#define EA_PRIVACY_MAX_TEXT ((size_t)64 << 20) /* one text given to detect */
#define EA_PRIVACY_MAX_ENTITIES 100000      /* per text, and per map */
#define EA_PRIVACY_MAX_PLACEHOLDER 48       /* "<" NAME "_" N ">" + NUL, bytes */

typedef struct ea_privacy_detector ea_privacy_detector;

/* Builds a detector from the configuration's `privacy:` tree (NULL: every
 * built-in type with the defaults). file names the configuration in
 * messages: a bad tree is refused with one line "file:line:column: path:
 * what is wrong" (path like privacy.custom[0].pattern) and EA_EFORMAT.
 * Compiles every regex (PCRE2, JIT when available) once. The caller owns
 * *out: free with ea_privacy_detector_destroy. The tree is not kept. */
ea_status ea_privacy_detector_create(const struct ea_config_node *privacy, const char *file,
                                     ea_privacy_detector **out, struct ea_error *err);
void ea_privacy_detector_destroy(ea_privacy_detector *d); /* NULL-safe */

/* Number of types (built-in + custom) and a type's name ("EMAIL",
 * "EMPLOYEE_ID"); "?" for an id out of range. */
uint32_t ea_privacy_type_count(const ea_privacy_detector *d);
const char *ea_privacy_type_name(const ea_privacy_detector *d, uint32_t type);
/* The id of a type name (case-insensitive); false when there is none. */
bool ea_privacy_type_find(const ea_privacy_detector *d, const char *name, uint32_t *type);
/* Whether a type is switched on (privacy.types). */
bool ea_privacy_type_enabled(const ea_privacy_detector *d, uint32_t type);

/* One detected value: bytes [start, end) of the text. */
struct ea_privacy_entity {
    size_t start, end;
    uint32_t type;
    float score;       /* 0..1, at or above the detector's threshold */
    uint32_t number;   /* redaction: the N of <TYPE_N>; 0 from detect */
};

/* A caller-owned list; zero-initialise, then release. */
struct ea_privacy_entities {
    struct ea_privacy_entity *v;
    size_t n, cap;
};
void ea_privacy_entities_release(struct ea_privacy_entities *e); /* NULL-safe */

/* Finds the entities of text[0..len) (bytes; any content, UTF-8 or not):
 * non-overlapping, sorted by start, replacing e's previous content (its
 * array is reused: detecting text after text into one e allocates only when
 * a text needs more room). Thread-safe: any number of threads may detect with one detector.
 * Errors (EA_ENOMEM, EA_ETOOBIG past EA_PRIVACY_MAX_TEXT or
 * EA_PRIVACY_MAX_ENTITIES, EA_EINTERNAL when a regex hit its match limit)
 * leave e empty: the caller must then not send the text anywhere remote. */
ea_status ea_privacy_detect(const ea_privacy_detector *d, const char *text, size_t len,
                            struct ea_privacy_entities *e, struct ea_error *err);

/* ---- redaction: the per-request map ------------------------------------ */

/* value <-> placeholder for one request (all its texts): the same value
 * gets the same placeholder everywhere; numbers count per type from 1.
 * Lives in memory only; destroy wipes the values. Not thread-safe (one
 * request, one thread at a time). The detector must outlive the map. */
typedef struct ea_privacy_map ea_privacy_map;
ea_status ea_privacy_map_create(const ea_privacy_detector *d, ea_privacy_map **out,
                                struct ea_error *err);
void ea_privacy_map_destroy(ea_privacy_map *m); /* NULL-safe; zeroes the stored values */

/* Distinct values of a type in the map (for logs and metrics: counts only). */
size_t ea_privacy_map_count(const ea_privacy_map *m, uint32_t type);
/* Distinct values of every type. */
size_t ea_privacy_map_total(const ea_privacy_map *m);
/* The placeholder of an entry, "<EMAIL_1>", into buf (NUL-terminated, at
 * most EA_PRIVACY_MAX_PLACEHOLDER bytes). Returns buf. */
const char *ea_privacy_placeholder(const ea_privacy_map *m, uint32_t type, uint32_t number,
                                   char *buf, size_t size);

/* How a text is written. PLAIN: raw text. JSON: the content of a JSON
 * string, or JSON text such as tool-call arguments (escapes like \n and
 * \u00e9 are kept whole: a placeholder never cuts one, and restored values
 * are written escaped, so JSON stays valid). */
enum ea_privacy_text_form { EA_PRIVACY_PLAIN, EA_PRIVACY_JSON };

/* Detects in text[0..len) and replaces each entity by its placeholder,
 * registering new values in m. *out (NUL-terminated, *out_len bytes) is the
 * caller's: free with ea_free. ents, if not NULL, receives the entities with
 * their numbers (offsets into the input). On error nothing is returned and
 * m may hold values of this text (harmless: only this request sees them). */
ea_status ea_privacy_redact(const ea_privacy_detector *d, ea_privacy_map *m, const char *text,
                            size_t len, enum ea_privacy_text_form form, char **out,
                            size_t *out_len, struct ea_privacy_entities *ents,
                            struct ea_error *err);

/* The same over n texts of one request (messages, tool results, tool-call
 * arguments), in order, all or nothing: on success outs[i] / out_lens[i]
 * hold each redacted text (free each with ea_free); on error every outs[i]
 * is NULL. forms may be NULL (all PLAIN). */
ea_status ea_privacy_redact_texts(const ea_privacy_detector *d, ea_privacy_map *m, size_t n,
                                  const char *const *texts, const size_t *lens,
                                  const enum ea_privacy_text_form *forms, char **outs,
                                  size_t *out_lens, struct ea_error *err);

/* ---- restoration ------------------------------------------------------- */

/* The streaming restorer over one answer stream (one per choice and per
 * tool-call argument string). Recognises the map's placeholders also when
 * the case changed (<email_1>), the brackets were escaped (\<EMAIL_1\>,
 * &lt;EMAIL_1&gt;, \u003cEMAIL_1\u003e in JSON), the underscore was escaped
 * (EMAIL\_1), markdown marks sit inside the brackets (<**EMAIL_1**>), or
 * the brackets were dropped inside backticks or bold (`EMAIL_1`,
 * **EMAIL_1**): the placeholder (with its brackets and escapes) is
 * replaced by the value, markdown marks are kept. Placeholders not in the
 * map are left as they are. JSON form: values are written JSON-escaped.
 * Holds back only a tail that could still become a placeholder: at most
 * ea_privacy_restorer_max_hold bytes. Concatenating the outputs of any split
 * of a stream gives the restoration of the whole stream. The map must
 * outlive the restorer. */
typedef struct ea_privacy_restorer ea_privacy_restorer;
ea_status ea_privacy_restorer_create(const ea_privacy_map *m, enum ea_privacy_text_form form,
                                     ea_privacy_restorer **out, struct ea_error *err);
void ea_privacy_restorer_destroy(ea_privacy_restorer *r); /* NULL-safe */
/* Feeds a chunk; *out / *out_len: what can be sent now (points into the
 * restorer, valid until its next call). */
ea_status ea_privacy_restorer_feed(ea_privacy_restorer *r, const char *chunk, size_t n,
                                   const char **out, size_t *out_len, struct ea_error *err);
/* End of the stream: the held tail, restored where it completes. */
ea_status ea_privacy_restorer_finish(ea_privacy_restorer *r, const char **out, size_t *out_len,
                                     struct ea_error *err);
/* The most bytes the restorer can hold back with this map. */
size_t ea_privacy_restorer_max_hold(const ea_privacy_restorer *r);

/* One-shot restoration of a whole text; *out is the caller's (ea_free). */
ea_status ea_privacy_restore(const ea_privacy_map *m, enum ea_privacy_text_form form,
                             const char *text, size_t len, char **out, size_t *out_len,
                             struct ea_error *err);

#ifdef __cplusplus
}
#endif
#endif
