/* store_int.h - what the store's files share: path building, the per-model
 * lock and the partial-download record. Internal to src/store/. */
#ifndef EDGEAGENT_STORE_INT_H
#define EDGEAGENT_STORE_INT_H

#include "edgeagent/store.h"

struct ea_store {
    char dir[EA_STORE_PATH_MAX];
};

/* dir/<encoded name><suffix> into out; EA_ETOOBIG when it does not fit,
 * EA_EINVAL for an empty, over-long or non-printable name. */
ea_status ea__store_path(const ea_store *s, const char *name, const char *suffix, char *out,
                         size_t size, struct ea_error *err);
/* Takes NAME.lock (flock, exclusive). wait: block until free, calling
 * waiting(ud) once first when it is held, and giving up with EA_ECANCELLED
 * when *cancel (may be NULL) is set while waiting (a signal interrupts the
 * wait; the lock is polled too); otherwise EA_EOVERLOADED. *fd is closed by
 * ea__store_unlock. */
ea_status ea__store_lock(const ea_store *s, const char *name, bool wait,
                         void (*waiting)(void *ud), void *ud, volatile int *cancel, int *fd,
                         struct ea_error *err);
void ea__store_unlock(int fd);
/* Writes data to path atomically (path.tmp, fsync, rename). */
ea_status ea__store_write_file(const char *path, const char *data, size_t len,
                               struct ea_error *err);
/* sha256 of a file's first n bytes (whole file when n is UINT64_MAX) into hex. */
ea_status ea__store_file_sha256(const char *path, char hex[65], struct ea_error *err);

#endif
