/* pull_event.h - the JSON events of a pull's progress, one format for the
 * CLI's `pull --json` lines and the server's SSE events (internal: both
 * include it from src/).
 * Does not hold: the transfer (pull.c), where the lines are written.
 */
#ifndef EDGEAGENT_PULL_EVENT_H
#define EDGEAGENT_PULL_EVENT_H

#include "edgeagent/store.h"
#include "util/buf.h"

/* The phase's name in events: "resolving", "downloading", "verifying", "done". */
const char *ea__pull_phase_name(enum ea_pull_phase p);
/* Appends {"event":"note","message":...} for p->note (nothing when p has
 * none) to note, and {"event":"progress",...} to progress. */
ea_status ea__pull_event_json(const struct ea_pull_progress *p, struct ea_buf *note,
                              struct ea_buf *progress);

#endif
